"""The ops dashboards' SVG charts: axes with units, a title per point, gaps, empty states."""

import datetime as dt
import re

import pytest
from django.utils import translation

from apps.common import units
from apps.observability.ops import charts

START = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)


def times(count, step_minutes=1):
    return [START + dt.timedelta(minutes=step_minutes * index) for index in range(count)]


def chart(series, **options):
    arguments = {
        "label": "Latency percentiles",
        "times": times(len(series[0].values)),
        "series": series,
        "value_format": units.format_milliseconds,
        "axis_label": "latency (ms)",
        "time_format": "%H:%M",
        "time_zone_name": "UTC",
        "empty_message": "No requests recorded in the last 1 h.",
        **options,
    }
    return str(charts.line_chart(**arguments))


@pytest.mark.parametrize(
    ("maximum", "top", "ticks"),
    [
        (87, 100, [0, 25, 50, 75, 100]),
        (4, 4, [0, 1, 2, 3, 4]),
        (1200, 1500, [0, 500, 1000, 1500]),
        (0.03, 0.03, [0, 0.01, 0.02, 0.03]),
    ],
)
def test_the_value_axis_ends_on_a_round_number_above_the_maximum(maximum, top, ticks):
    axis_top, axis_ticks = charts.y_axis(maximum)

    assert axis_top == pytest.approx(top)
    assert axis_ticks == pytest.approx(ticks)


def test_every_point_has_a_title_naming_time_series_and_value():
    svg = chart([charts.Series("p95", [12.0, 1500.0])])

    assert "<title>08:00 UTC · p95: 12 ms</title>" in svg
    assert "<title>08:01 UTC · p95: 1,500 ms</title>" in svg
    assert svg.count("<circle") == 2


def test_axes_carry_units_and_time_labels():
    svg = chart([charts.Series("p95", [10.0, 80.0, 40.0])])

    assert ">latency (ms)</text>" in svg
    assert ">time (UTC)</text>" in svg
    assert ">20 ms</text>" in svg
    assert ">08:00</text>" in svg


def test_the_chart_is_labelled_for_screen_readers():
    svg = chart([charts.Series("p95", [10.0])])

    assert svg.startswith('<svg class="ops-chart"')
    assert 'role="img" aria-label="Latency percentiles"' in svg


def test_a_bucket_without_data_breaks_the_line():
    svg = chart([charts.Series("p95", [10.0, 20.0, None, 30.0, 40.0])])

    assert svg.count("<polyline") == 2
    assert svg.count("<circle") == 4


def test_series_get_their_own_colour_class():
    svg = chart([charts.Series("p50", [1.0, 2.0]), charts.Series("p99", [3.0, 4.0])])

    assert 'class="ops-line ops-series-0"' in svg
    assert 'class="ops-line ops-series-1"' in svg


def test_no_data_shows_what_to_do_instead_of_an_empty_frame():
    html = chart([charts.Series("p95", [None, None])])

    assert html == '<p class="ops-empty">No requests recorded in the last 1 h.</p>'


def test_only_zeros_are_no_data_unless_zero_is_data():
    assert "ops-empty" in chart([charts.Series("requests", [0, 0])])
    assert "<circle" in chart([charts.Series("5xx rate", [0, 0])], zero_is_data=True)


def test_text_is_escaped():
    svg = chart([charts.Series("<script>", [1.0])], label='a "quoted" <label>')

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert 'aria-label="a &quot;quoted&quot; &lt;label&gt;"' in svg


def test_coordinates_do_not_follow_the_active_language():
    series = [charts.Series("p95", [12.5, None, 0.25])]
    with translation.override("en"):
        english = chart(series)
    with translation.override("de"):
        german = chart(series)

    assert german == english


def test_x_labels_are_spaced_out_on_long_series():
    svg = chart([charts.Series("requests", [1.0] * 168)], times=times(168, step_minutes=60))

    labels = re.findall(r'text-anchor="middle">(\d\d:\d\d)</text>', svg)
    assert 4 <= len(labels) <= 7


def test_bars_have_a_title_and_a_value_label_each():
    svg = str(
        charts.bar_chart(
            label="Status code mix",
            bars=[("2xx", 90), ("5xx", 10)],
            value_format=charts.format_count,
            empty_message="No requests.",
            classes=["ops-status-2xx", "ops-status-5xx"],
        )
    )

    assert "<title>2xx: 90</title>" in svg
    assert "<title>5xx: 10</title>" in svg
    assert 'class="ops-point ops-bar ops-status-5xx"' in svg


def test_bars_without_values_show_the_empty_message():
    html = charts.bar_chart(
        label="x", bars=[("2xx", 0)], value_format=charts.format_count, empty_message="Nothing."
    )

    assert str(html) == '<p class="ops-empty">Nothing.</p>'


def test_a_sparkline_sums_itself_up_in_its_title():
    svg = str(charts.sparkline([0, 4, 2], "GET /a/: at most 4"))

    assert "<title>GET /a/: at most 4</title>" in svg
    assert svg.count("<polyline") == 1


def test_a_sparkline_without_requests_says_so():
    assert "no requests" in str(charts.sparkline([0, 0], "GET /a/"))


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0 B"), (2048, "2 KiB"), (5 * 1024**2, "5 MiB"), (3 * 1024**3, "3 GiB")],
)
def test_sizes_are_shown_in_binary_units(value, text):
    assert units.format_bytes(value) == text


def test_the_bucket_in_progress_is_marked_not_drawn_as_a_drop():
    svg = chart([charts.Series("requests", [30.0, 32.0, 4.0])], last_in_progress=True)

    assert "<title>08:02 UTC · requests: 4 ms (in progress)</title>" in svg
    assert svg.count("ops-point-in-progress") == 1
    # The complete buckets form the solid line; the one in progress is reached by a dashed one.
    solid = re.findall(r'<polyline class="ops-line ops-series-0" points="([^"]+)"', svg)
    assert [len(points.split()) for points in solid] == [2]
    assert svg.count("ops-line-in-progress") == 1


def test_without_a_bucket_in_progress_every_point_is_complete():
    svg = chart([charts.Series("requests", [30.0, 32.0, 4.0])])

    assert "in progress" not in svg
