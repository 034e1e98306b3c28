"""The SVG charts: axis ranges and ticks worked out by hand, bars and points counted and placed in
pixels, non-finite values skipped, empty input drawn as "no data", every text escaped."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from prefpipe.evaluate.svg_charts import (
    axis_range,
    bar_chart,
    bin_edges,
    histogram,
    histogram_counts,
    line_chart,
    nice_step,
    scatter,
    tick_label,
    ticks_within,
)

NS = "{http://www.w3.org/2000/svg}"
NAN, INF = math.nan, math.inf


def parsed(svg: str) -> ET.Element:
    """The chart as XML: it must be well formed, which escaping guarantees."""
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def of_class(svg: str, css: str) -> list[ET.Element]:
    return [e for e in parsed(svg).iter() if e.get("class") == css]


@pytest.mark.parametrize(("span", "step"), [(8.9, 2), (1.0, 0.2), (0.3, 0.1), (50, 10), (7, 2),
                                            (5, 1), (0.46, 0.1), (2.0, 0.5)])
def test_nice_step_is_the_smallest_1_2_5_at_or_above_span_over_five(span, step):
    assert nice_step(span) == pytest.approx(step)


@pytest.mark.parametrize(("values", "kwargs", "expected"), [
    ([0.3, 9.2], {}, (0, 10, [0, 2, 4, 6, 8, 10])),             # step 8.9/5 -> 2
    ([0.12, 0.58], {}, (0.1, 0.6, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])),  # step 0.46/5 -> 0.1
    ([3.0, 3.0], {}, (2.6, 3.4, [2.6, 2.8, 3.0, 3.2, 3.4])),     # 3 +- 0.3, step 0.6/5 -> 0.2
    ([0.0], {}, (-1, 1, [-1, -0.5, 0, 0.5, 1])),                 # 0 +- 1, step 2/5 -> 0.5
    ([], {}, (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1])),                # nothing: the unit range
    ([2, 7], {"include_zero": True}, (0, 8, [0, 2, 4, 6, 8])),    # 0..7, step 7/5 -> 2
    ([-2.9, -1.1], {}, (-3, -1, [-3, -2.5, -2, -1.5, -1])),      # step 1.8/5 -> 0.5, ends outward
])
def test_axis_ranges_worked_out_by_hand(values, kwargs, expected):
    lo, hi, ticks = axis_range(values, **kwargs)
    assert (lo, hi) == pytest.approx(expected[:2])
    assert ticks == pytest.approx(expected[2])


def test_non_finite_values_leave_the_range_alone():
    assert axis_range([1, NAN, INF, -INF, 3]) == axis_range([1, 3]) != axis_range([1, 30])
    assert axis_range([NAN]) == axis_range([])


def test_ticks_within_fixed_ends_and_their_labels():
    assert ticks_within(3.0, 40.0) == pytest.approx([10, 20, 30, 40])  # step 37/5 -> 10
    assert ticks_within(0.0, 1.0) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert [tick_label(v, 0.2) for v in (0.0, 0.4, -0.6)] == ["0.0", "0.4", "-0.6"]
    assert tick_label(10.0, 5) == "10" and tick_label(0.05, 0.05) == "0.05"
    assert tick_label(2_500_000.0, 500_000) == "2.5e+06"


def test_grouped_bars_one_per_finite_value_placed_in_pixels():
    svg = bar_chart({"a": {"policy": 1.0, "reference": 2.0}, "b": {"policy": NAN, "reference": 3.0}},
                    "t", "family", "share")
    bars = of_class(svg, "bar")
    assert len(bars) == 3  # the NaN bar is skipped
    # y axis 0..3 (step 3/5 -> 1); plot area y 46..236 (280 - 44), so 190 px for 3 units;
    # x: plot 60..464 (404 px), 2 groups of 202 px, bars 202 * 0.8 / 2 = 80.8 px from 10% in
    tallest = [b for b in bars if b.find(f"{NS}title").text == "b · reference: 3"][0]
    assert (tallest.get("y"), tallest.get("height")) == ("46.0", "190.0")
    assert (tallest.get("x"), tallest.get("width")) == (f"{60 + 202 * 1.1 + 80.8:.1f}", "80.8")
    first = [b for b in bars if b.find(f"{NS}title").text == "a · policy: 1"][0]
    assert (first.get("x"), first.get("y"), first.get("height")) == ("80.2", f"{236 - 190 / 3:.1f}",
                                                                    f"{190 / 3:.1f}")


def test_negative_bars_hang_from_zero():
    svg = bar_chart({"a": {"s": -2.0}, "b": {"s": 2.0}})
    # axis -2..2 (step 4/5 -> 1): zero at 46 + 95 = 141 px; each bar 95 px tall
    low, high = of_class(svg, "bar")
    assert (low.get("y"), low.get("height")) == ("141.0", "95.0")
    assert (high.get("y"), high.get("height")) == ("46.0", "95.0")


def test_scatter_points_counted_and_placed():
    svg = scatter({"run": [(0, 0), (10, 10), (NAN, 1), (2, INF)], "other": [(5, 5)]})
    points = of_class(svg, "point")
    assert len(points) == 3
    # x and y 0..10; x: 60 + v/10 * 404, y: 236 - v/10 * 190 (plot area 46..236 at height 280)
    assert [(p.get("cx"), p.get("cy")) for p in points] == [("60.0", "236.0"), ("464.0", "46.0"),
                                                            ("262.0", "141.0")]


def test_line_chart_keeps_the_order_given_and_dots_a_single_point():
    svg = line_chart({"trajectory": [(0, 0), (10, 10), (5, 0)], "lonely": [(5, 5)]})
    (line,) = of_class(svg, "series")
    assert line.get("points") == "60.0,236.0 464.0,46.0 262.0,236.0"
    (dot,) = of_class(svg, "point")
    assert (dot.get("cx"), dot.get("cy")) == ("262.0", "141.0")
    assert len(of_class(line_chart({"a": [(0, 1), (1, 2)]}, markers=True), "point")) == 2


def test_equal_min_and_max_still_draws_inside_the_frame():
    svg = line_chart({"flat": [(0, 3.0), (1, 3.0), (2, 3.0)]})
    (line,) = of_class(svg, "series")
    ys = {float(p.split(",")[1]) for p in line.get("points").split()}
    assert ys == {141.0}  # 3 sits mid-axis on 2.6..3.4: 236 - 190 / 2


@pytest.mark.parametrize("chart", [
    lambda: line_chart({}, "empty"), lambda: line_chart({"a": [(NAN, 1), (1, INF)]}, "empty"),
    lambda: scatter({"a": []}, "empty"), lambda: bar_chart({"g": {"s": NAN}}, "empty"),
    lambda: bar_chart({}, "empty"), lambda: histogram({"a": [NAN]}, 5, "empty"),
    lambda: histogram({}, 5, "empty")])
def test_nothing_to_draw_gives_the_placeholder(chart):
    svg = chart()
    assert len(of_class(svg, "no-data")) == 1
    assert not of_class(svg, "bar") and not of_class(svg, "point") and not of_class(svg, "series")


def test_a_chart_with_data_has_no_placeholder():
    assert not of_class(line_chart({"a": [(0, 1)]}), "no-data")


def test_histogram_counts_and_edges_by_hand():
    assert bin_edges([0, 1, 2, 3, 4], 2) == [0, 2, 4]
    assert histogram_counts([0, 1, 2, 3, 4], [0, 2, 4]) == [2, 3]  # the last bin is closed
    assert histogram_counts([0.5, NAN, 9, -1], [0, 1, 2]) == [1, 0]  # outside and NaN left out
    assert bin_edges([7, 7, NAN], 1) == [6.5, 7.5]
    assert bin_edges([0, 10], 4) == [0, 2.5, 5, 7.5, 10]


def test_histogram_draws_a_bar_per_bin_per_sample():
    svg = histogram({"policy": [1, 2, 2, 3], "reference": [1, 5, INF], "empty": []}, 4)
    bars = of_class(svg, "bar")
    assert len(bars) == 8  # 4 shared bins x 2 samples with data
    titles = [b.find(f"{NS}title").text for b in bars]
    assert titles[:2] == ["policy: 1 in [1, 2)", "reference: 1 in [1, 2)"]
    assert titles[-2:] == ["policy: 0 in [4, 5]", "reference: 1 in [4, 5]"]


def test_every_text_is_escaped():
    hostile = '<script>alert("x")</script> & co'
    for svg in (line_chart({hostile: [(0, 1), (1, 2)], "b": [(0, 0)]}, hostile, hostile, hostile),
                bar_chart({hostile: {hostile: 1.0, "b": 2.0}}, hostile, hostile, hostile),
                histogram({hostile: [1, 2], "b": [3]}, 2, hostile, hostile),
                scatter({hostile: [(1, 1)]}, hostile)):
        root = parsed(svg)
        assert "<script" not in svg.lower()
        assert not [e for e in root.iter() if e.tag.endswith("script")]
        assert root.find(f"{NS}title").text == hostile  # shown as its literal text
