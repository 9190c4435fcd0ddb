"""Server-rendered SVG charts for the ops dashboards: no JavaScript library, no CDN.

Every chart has labelled axes with units, a <title> on every data point (the browser shows it as
a tooltip), role="img" with an aria-label for screen readers, and, when there is nothing to draw,
a message saying what to do instead of an empty frame. Colours come from ops.css classes, so the
admin's dark theme applies.
"""

import math
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import mark_safe

WIDTH = 600
HEIGHT = 210
LEFT, RIGHT, TOP, BOTTOM = 78, 14, 12, 42
X_TICKS = 6
Y_TICKS = 4
SERIES_CLASSES = 4  # ops.css defines .ops-series-0 … .ops-series-3


@dataclass
class Series:
    name: str
    values: list  # one number per time bucket, None where the bucket has no data (a gap)


def _number(value):
    """A compact number: 1234 → 1,234; 12.5 → 12.5; 0.25 → 0.25."""
    if value == int(value):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def format_milliseconds(value):
    return f"{_number(value / 1000)} s" if value >= 1000 else f"{_number(value)} ms"


def format_percent(value):
    return f"{_number(value)} %"


def format_per_minute(value):
    return f"{_number(value)}/min"


def format_count(value):
    return _number(value)


def format_bytes(value):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{_number(round(value, 1))} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def nice_step(maximum, ticks=Y_TICKS):
    """A round step (1, 2, 2.5 or 5 times a power of ten) dividing 0..maximum into ~ticks parts."""
    if maximum <= 0:
        return 1.0
    raw = maximum / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        if raw <= multiple * magnitude:
            return multiple * magnitude
    return 10 * magnitude


def y_axis(maximum, ticks=Y_TICKS):
    """(top of the axis, tick values from 0 to top)."""
    step = nice_step(maximum, ticks)
    count = max(1, math.ceil(maximum / step)) if maximum > 0 else ticks
    top = step * count
    return top, [step * index for index in range(count + 1)]


def empty_state(message):
    return mark_safe(f'<p class="ops-empty">{escape(message)}</p>')  # noqa: S308 - escaped


def line_chart(
    *,
    label,
    times,
    series,
    value_format,
    axis_label,
    time_format,
    time_zone_name,
    empty_message,
    zero_is_data=False,
):
    """A time-series chart: one polyline and one titled point per bucket and series.

    `times` are the bucket starts (aware datetimes, already in the display time zone). A chart
    whose series hold no value, or only zeros unless `zero_is_data`, shows `empty_message`.
    """
    values = [value for item in series for value in item.values if value is not None]
    if not values or (not zero_is_data and not any(values)):
        return empty_state(empty_message)
    count = len(times)
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    top, ticks = y_axis(max(values))

    def x(index):
        return LEFT + (plot_width * index / (count - 1) if count > 1 else plot_width / 2)

    def y(value):
        return TOP + plot_height * (1 - value / top)

    parts = [
        f'<svg class="ops-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
    ]
    for tick in ticks:
        position = y(tick)
        parts.append(
            f'<line class="ops-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
            f'y1="{position:.1f}" y2="{position:.1f}"/>'
            f'<text class="ops-tick" x="{LEFT - 6}" y="{position + 4:.1f}" text-anchor="end">'
            f"{escape(value_format(tick))}</text>"
        )
    step = max(1, math.ceil(count / X_TICKS))
    for index in range(0, count, step):
        position = x(index)
        parts.append(
            f'<line class="ops-axis" x1="{position:.1f}" x2="{position:.1f}" '
            f'y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM + 4}"/>'
            f'<text class="ops-tick" x="{position:.1f}" y="{HEIGHT - BOTTOM + 16}" '
            f'text-anchor="middle">{escape(times[index].strftime(time_format))}</text>'
        )
    parts.append(
        f'<line class="ops-axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
        f'y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}"/>'
        f'<line class="ops-axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>'
        f'<text class="ops-axis-label" x="{LEFT + plot_width / 2:.1f}" y="{HEIGHT - 6}" '
        f'text-anchor="middle">time ({escape(time_zone_name)})</text>'
        f'<text class="ops-axis-label" transform="rotate(-90)" x="{-(TOP + plot_height / 2):.1f}" '
        f'y="14" text-anchor="middle">{escape(axis_label)}</text>'
    )
    radius = 2.5 if count <= 90 else 1.6
    for number, item in enumerate(series):
        css = f"ops-series-{number % SERIES_CLASSES}"
        segments, segment = [], []
        points = []
        for index, value in enumerate(item.values):
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x(index):.1f},{y(value):.1f}")
            moment = times[index].strftime(time_format)
            points.append(
                f'<circle class="ops-point {css}" cx="{x(index):.1f}" cy="{y(value):.1f}" '
                f'r="{radius}"><title>{escape(moment)} {escape(time_zone_name)} · '
                f"{escape(item.name)}: {escape(value_format(value))}</title></circle>"
            )
        if segment:
            segments.append(segment)
        parts.extend(
            f'<polyline class="ops-line {css}" points="{" ".join(segment)}"/>'
            for segment in segments
        )
        parts.extend(points)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def bar_chart(*, label, bars, value_format, empty_message, classes=None):
    """Horizontal bars, one titled bar per (name, value) in `bars`; `classes` colours them."""
    if not bars or not any(value for _, value in bars):
        return empty_state(empty_message)
    row_height, gap, name_width, value_width = 20, 6, 230, 80
    height = len(bars) * (row_height + gap) + gap
    plot_width = WIDTH - name_width - value_width
    maximum = max(value for _, value in bars)
    parts = [
        f'<svg class="ops-chart ops-bars" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
    ]
    for index, (name, value) in enumerate(bars):
        top = gap + index * (row_height + gap)
        length = plot_width * value / maximum if maximum else 0
        shown = name if len(name) <= 28 else name[:27] + "…"
        css = classes[index] if classes else "ops-series-0"
        parts.append(
            f'<text class="ops-tick" x="{name_width - 8}" y="{top + row_height * 0.7:.1f}" '
            f'text-anchor="end">{escape(shown)}</text>'
            f'<rect class="ops-point ops-bar {css}" '
            f'x="{name_width}" y="{top}" width="{max(length, 1):.1f}" height="{row_height}">'
            f"<title>{escape(name)}: {escape(value_format(value))}</title></rect>"
            f'<text class="ops-tick" x="{name_width + max(length, 1) + 6:.1f}" '
            f'y="{top + row_height * 0.7:.1f}">{escape(value_format(value))}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def sparkline(values, label):
    """A small line of requests per bucket for a table cell; its title sums it up."""
    width, height = 120, 24
    maximum = max(values) if values else 0
    if not maximum:
        return mark_safe(  # noqa: S308 - escaped
            f'<span class="ops-quiet" title="{escape(label)}">no requests</span>'
        )
    count = len(values)
    points = " ".join(
        f"{(width - 2) * index / max(count - 1, 1) + 1:.1f},"
        f"{height - 2 - (height - 4) * value / maximum:.1f}"
        for index, value in enumerate(values)
    )
    return mark_safe(  # noqa: S308 - escaped
        f'<svg class="ops-sparkline" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
        f'<polyline class="ops-line ops-series-0" points="{points}"/></svg>'
    )
