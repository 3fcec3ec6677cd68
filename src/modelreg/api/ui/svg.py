"""A small line chart drawn on the server: one metric across versions, stage changes marked.

One of the two modules allowed to answer ``Markup`` (the other is ``markdown``): every label
is escaped here, numbers are written by this module, values that are not finite are left
out, and the look comes from CSS classes (``browse.css``), never inline styles, which the
pages' CSP forbids. No script: a point's value shows in its ``<title>`` on hover.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 12, 28
MAX_POINTS = 200


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: float) -> str:
    """A value as the chart prints it: four significant digits."""
    return format(value, ".4g")


def _range(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    return low, high


def line_chart(
    points: Sequence[tuple[int, Any]],
    markers: Sequence[tuple[int, str]] = (),
    label: str = "",
) -> Markup:
    """An SVG of ``points`` (version, value), oldest first; ``markers`` (version, stage).

    Versions are spaced evenly in the order given; at most the last 200 points are drawn.
    A marker on a version that is not drawn is skipped. With no finite value the chart says
    so in words instead of drawing an empty frame.
    """
    shown = [(int(v), float(y)) for v, y in points if _finite(y)][-MAX_POINTS:]
    name = escape(label)
    if not shown:
        return Markup(
            '<p class="chart-empty">No values of <code>{}</code> to chart yet.</p>'
        ).format(name)
    low, high = _range([y for _, y in shown])
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = inner_w / (len(shown) - 1) if len(shown) > 1 else 0.0

    def x_of(i: int) -> float:
        return LEFT + (i * step if len(shown) > 1 else inner_w / 2)

    # Halves keep the span finite even for values near the float's limits.
    span = high / 2 - low / 2

    def y_of(y: float) -> float:
        return TOP + (high / 2 - y / 2) / span * inner_h

    where = {v: i for i, (v, _) in enumerate(shown)}
    parts = [
        Markup(
            '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{n} by version">'
            "<title>{n} by version</title>"
        ).format(w=WIDTH, h=HEIGHT, n=name),
        _axes(low, high, shown[0][0], shown[-1][0]),
    ]
    for version, stage in markers:
        if version in where:
            x = x_of(where[version])
            parts.append(
                Markup(
                    '<line class="chart-marker chart-marker-{s}" x1="{x:.1f}" y1="{t}" '
                    'x2="{x:.1f}" y2="{b}"><title>v{v} → {label}</title></line>'
                ).format(s=_css_name(stage), x=x, t=TOP, b=HEIGHT - BOTTOM, v=version, label=stage)
            )
    coords = " ".join(f"{x_of(i):.1f},{y_of(y):.1f}" for i, (_, y) in enumerate(shown))
    if len(shown) > 1:
        parts.append(Markup('<polyline class="chart-line" points="{}"/>').format(coords))
    for i, (version, y) in enumerate(shown):
        parts.append(
            Markup(
                '<circle class="chart-point" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                "<title>v{v}: {n} = {val}</title></circle>"
            ).format(x=x_of(i), y=y_of(y), v=version, n=name, val=_fmt(y))
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _axes(low: float, high: float, first: int, last: int) -> Markup:
    """The two axes, the value range on the left and the first and last version below."""
    bottom, right, below = HEIGHT - BOTTOM, WIDTH - RIGHT, HEIGHT - 8
    out = Markup(
        '<line class="chart-axis" x1="{l}" y1="{b}" x2="{r}" y2="{b}"/>'
        '<line class="chart-axis" x1="{l}" y1="{t}" x2="{l}" y2="{b}"/>'
        '<text class="chart-label" x="{lx}" y="{ty}" text-anchor="end">{hi}</text>'
        '<text class="chart-label" x="{lx}" y="{b}" text-anchor="end">{lo}</text>'
        '<text class="chart-label" x="{l}" y="{by}">v{first}</text>'
    ).format(
        l=LEFT,
        r=right,
        t=TOP,
        b=bottom,
        lx=LEFT - 6,
        ty=TOP + 10,
        by=below,
        hi=_fmt(high),
        lo=_fmt(low),
        first=first,
    )
    if last != first:
        out += Markup(
            '<text class="chart-label" x="{r}" y="{by}" text-anchor="end">v{last}</text>'
        ).format(r=right, by=below, last=last)
    return out


def _css_name(stage: str) -> str:
    """A stage as a class-name suffix: letters, digits and dashes only."""
    cleaned = "".join(c if c.isalnum() else "-" for c in stage.lower())
    return cleaned or "stage"
