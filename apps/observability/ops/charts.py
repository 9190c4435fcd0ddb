"""Server-rendered SVG charts for the ops dashboards: no JavaScript library, no CDN.

Every chart has labelled axes with units, a <title> on every data point (the browser shows it as
a tooltip), role="img" with an aria-label for screen readers, and, when there is nothing to draw,
a message saying what to do instead of an empty frame. Colours come from ops.css classes, so the
admin's dark theme applies.

The markup is in templates/ops/charts/ (line.html, bars.html, sparkline.html, empty.html), where
autoescaping escapes every label. This module only computes geometry and text: it hands the
templates strings, numbers included, already formatted ("12.3").
"""

import math
from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from apps.common.units import format_number

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


_number = format_number


def format_percent(value):
    return f"{_number(value)} %"


def format_per_minute(value):
    return f"{_number(value)}/min"


def format_count(value):
    return _number(value)


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


def _render(template, context):
    # strip: the template file's final newline is not part of the chart
    html = render_to_string(f"ops/charts/{template}", context).strip()
    return mark_safe(html)  # noqa: S308 - template output, autoescaped


def _decimal(value):
    # Coordinates reach the template as strings so that localisation never turns 12.5 into 12,5.
    return f"{value:.1f}"


def empty_state(message):
    return _render("empty.html", {"message": message})


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
    last_in_progress=False,
):
    """A time-series chart: one polyline and one titled point per bucket and series.

    `times` are the bucket starts (aware datetimes, already in the display time zone). A chart
    whose series hold no value, or only zeros unless `zero_is_data`, shows `empty_message`.
    With `last_in_progress` the last bucket is still filling: its point is hollow, titled
    "in progress", and reached by a dashed line, so that a partial count does not read as a drop.
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

    step = max(1, math.ceil(count / X_TICKS))
    drawn = []
    for number, item in enumerate(series):
        segments, segment, points = [], [], []
        partial_segment = None
        for index, value in enumerate(item.values):
            if value is None:
                if segment:
                    segments.append(" ".join(segment))
                segment = []
                continue
            cx, cy = _decimal(x(index)), _decimal(y(value))
            in_progress = last_in_progress and index == count - 1
            if in_progress:
                # Dashed from the last complete point, if there is one next to it.
                partial_segment = f"{segment[-1]} {cx},{cy}" if segment else None
            else:
                segment.append(f"{cx},{cy}")
            points.append(
                {
                    "cx": cx,
                    "cy": cy,
                    "moment": times[index].strftime(time_format),
                    "value": value_format(value),
                    "in_progress": in_progress,
                }
            )
        if segment:
            segments.append(" ".join(segment))
        drawn.append(
            {
                "name": item.name,
                "css": f"ops-series-{number % SERIES_CLASSES}",
                "segments": segments,
                "partial_segment": partial_segment,
                "points": points,
            }
        )
    return _render(
        "line.html",
        {
            "label": label,
            "width": str(WIDTH),
            "height": str(HEIGHT),
            "left": str(LEFT),
            "right": str(WIDTH - RIGHT),
            "top": str(TOP),
            "bottom": str(HEIGHT - BOTTOM),
            "y_ticks": [
                {
                    "y": _decimal(y(tick)),
                    "text_y": _decimal(y(tick) + 4),
                    "text": value_format(tick),
                }
                for tick in ticks
            ],
            "tick_text_x": str(LEFT - 6),
            "x_ticks": [
                {"x": _decimal(x(index)), "text": times[index].strftime(time_format)}
                for index in range(0, count, step)
            ],
            "x_tick_end": str(HEIGHT - BOTTOM + 4),
            "x_tick_text_y": str(HEIGHT - BOTTOM + 16),
            "time_label_x": _decimal(LEFT + plot_width / 2),
            "time_label_y": str(HEIGHT - 6),
            "time_zone_name": time_zone_name,
            # The value label is rotated by -90°, so its x runs along the plot's height, upwards.
            "value_label_x": _decimal(-(TOP + plot_height / 2)),
            "axis_label": axis_label,
            "radius": "2.5" if count <= 90 else "1.6",
            "series": drawn,
        },
    )


def bar_chart(*, label, bars, value_format, empty_message, classes=None):
    """Horizontal bars, one titled bar per (name, value) in `bars`; `classes` colours them."""
    if not bars or not any(value for _, value in bars):
        return empty_state(empty_message)
    row_height, gap, name_width, value_width = 20, 6, 230, 80
    height = len(bars) * (row_height + gap) + gap
    plot_width = WIDTH - name_width - value_width
    maximum = max(value for _, value in bars)
    rows = []
    for index, (name, value) in enumerate(bars):
        top = gap + index * (row_height + gap)
        length = max(plot_width * value / maximum if maximum else 0, 1)
        rows.append(
            {
                "name": name,
                "shown": name if len(name) <= 28 else name[:27] + "…",
                "css": classes[index] if classes else "ops-series-0",
                "y": str(top),
                "text_y": _decimal(top + row_height * 0.7),
                "length": _decimal(length),
                "value_x": _decimal(name_width + length + 6),
                "value": value_format(value),
            }
        )
    return _render(
        "bars.html",
        {
            "label": label,
            "width": str(WIDTH),
            "height": str(height),
            "name_x": str(name_width - 8),
            "bar_x": str(name_width),
            "row_height": str(row_height),
            "bars": rows,
        },
    )


def sparkline(values, label):
    """A small line of requests per bucket for a table cell; its title sums it up."""
    width, height = 120, 24
    maximum = max(values) if values else 0
    points = None  # the template says "no requests" rather than draw a flat line
    if maximum:
        count = len(values)
        points = " ".join(
            f"{_decimal((width - 2) * index / max(count - 1, 1) + 1)},"
            f"{_decimal(height - 2 - (height - 4) * value / maximum)}"
            for index, value in enumerate(values)
        )
    return _render(
        "sparkline.html",
        {"label": label, "width": str(width), "height": str(height), "points": points},
    )
