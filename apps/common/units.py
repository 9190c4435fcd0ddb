"""One way to write numbers with units, on the ops pages and in the admin alike.

Durations always in milliseconds (never "1.42 s" next to "1445.0 ms"), sizes in binary units
(KiB, MiB, GiB: what PostgreSQL and the kernel count in).
"""

# Written where a value is missing.
NO_VALUE = "\N{EN DASH}"


def format_number(value):
    """A compact number: 1234 → 1,234; 12.5 → 12.5; 0.25 → 0.25."""
    if value == int(value):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def format_milliseconds(value):
    """1445.03 → "1,445 ms"; 12.34 → "12.3 ms"; None → an en dash."""
    if value is None:
        return NO_VALUE
    return f"{format_number(round(value) if value >= 100 else value)} ms"


def format_bytes(value):
    """1536 → "1.5 KiB"; None → an en dash."""
    if value is None:
        return NO_VALUE
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{format_number(round(value, 1))} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
