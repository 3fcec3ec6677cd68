"""The metric chart: any number of points, no non-finite values, every label escaped."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from modelreg.api.ui.svg import line_chart

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    """The chart as XML (with its namespace, as a browser reads inline SVG)."""
    text = str(svg).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    return ET.fromstring(text)  # noqa: S314 - the chart this module drew, not outside input


def numbers(svg: str) -> list[float]:
    return [float(n) for n in re.findall(r'\s(?:c[xy]|[xy][12]?)="([^"]+)"', svg)]


def test_no_points_say_so_in_words():
    out = line_chart([], [], "acc")
    assert isinstance(out, Markup)
    assert "<svg" not in out
    assert "No values of <code>acc</code>" in out


def test_one_point_is_one_dot_without_a_line():
    root = parse(line_chart([(3, 0.9)], [(3, "production")], "acc"))
    assert len(root.findall(f"{NS}circle")) == 1
    assert root.find(f"{NS}polyline") is None
    assert len(root.findall(f"{NS}line[@class='chart-marker chart-marker-production']")) == 1


def test_two_hundred_points_draw_one_line_inside_the_frame():
    points = [(i, math.sin(i / 10)) for i in range(1, 201)]
    svg = line_chart(points, [(50, "staging"), (120, "production"), (999, "production")], "f1")
    root = parse(svg)
    assert len(root.findall(f"{NS}circle")) == 200
    assert len(root.find(f"{NS}polyline").get("points").split()) == 200
    assert len(root.findall(f"{NS}line[@class]")) == 2 + 2  # two axes, two markers shown
    assert all(0 <= n <= 640 for n in numbers(svg))
    assert len(svg) < 40_000


def test_more_than_two_hundred_points_keep_the_latest():
    root = parse(line_chart([(i, float(i)) for i in range(1, 301)], [], "x"))
    titles = [c.find(f"{NS}title").text for c in root.findall(f"{NS}circle")]
    assert len(titles) == 200
    assert titles[0] == "v101: x = 101"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None, "0.5", True])
def test_values_that_are_not_finite_numbers_are_left_out(bad: object):
    svg = line_chart([(1, 0.5), (2, bad), (3, 0.7)], [], "acc")
    root = parse(svg)
    assert [c.find(f"{NS}title").text for c in root.findall(f"{NS}circle")] == [
        "v1: acc = 0.5",
        "v3: acc = 0.7",
    ]
    assert "nan" not in svg.lower()
    assert "inf" not in svg.lower()


def test_only_non_finite_values_is_like_none():
    assert "<svg" not in line_chart([(1, math.nan), (2, math.inf)], [], "acc")


@pytest.mark.parametrize("values", [[5.0, 5.0], [0.0, 0.0], [-1e308, 1e308], [1e-300, 2e-300]])
def test_flat_and_extreme_ranges_stay_finite(values: list[float]):
    svg = line_chart(list(enumerate(values, start=1)), [], "m")
    assert all(math.isfinite(n) and 0 <= n <= 640 for n in numbers(svg))


def test_html_in_labels_is_escaped():
    hostile = '"><script>alert(1)</script><img src=x onerror=alert(1)>'
    svg = line_chart([(1, 0.1), (2, 0.2)], [(2, hostile)], hostile)
    assert "<script" not in svg
    assert "<img" not in svg
    assert "onerror=alert" in svg  # as text, inside an escaped title
    root = parse(svg)  # still well-formed XML
    assert root.get("aria-label") == f"{hostile} by version"
    marker = root.find(f"{NS}line[@x1]/{NS}title")
    assert marker is not None


def test_the_chart_has_no_inline_style_or_script():
    svg = line_chart([(1, 0.1), (2, 0.2)], [(1, "production")], "acc")
    assert "style" not in svg
    assert not re.search(r"\son\w+=", svg)
