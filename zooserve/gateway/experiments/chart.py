"""The report's chart of a comparison over time: the estimated difference (treatment - control) and its 95%
confidence sequence at each look, so that an experimenter sees the effect settle and the band close in.

Inline SVG, no scripts: the title is an HTML caption (it wraps, whatever the variants' names), every other
label is placed inside the drawing's box (the plot itself is clipped to its frame, the labels are not in
it), which tests/experiments/test_report_page.py checks in Chromium.
"""

from __future__ import annotations

from html import escape
from itertools import count

import numpy as np

WIDTH, HEIGHT = 660, 230
LEFT, RIGHT, TOP, BOTTOM = 70, 36, 10, 42  # margins: tick labels left and below (the title is HTML, above)
TICKS = 5
_ids = count()


def _elapsed(seconds: float, span: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if span >= 2 * size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def _y_range(course: dict) -> tuple[float, float]:
    """From the band once the first tenth of the looks is past (the first looks' band is wide and would flatten
    the rest; it runs off the top and bottom of the frame), always with zero in sight."""
    skip = len(course["time"]) // 10
    low = min([0.0, *course["low"][skip:], *course["difference"]])
    high = max([0.0, *course["high"][skip:], *course["difference"]])
    pad = (high - low) * 0.08 or 0.01
    return low - pad, high + pad


def course_chart(course: dict, title: str) -> str:
    """One comparison's course (report.py ``_course``) as an SVG line chart, or a sentence when it is empty."""
    if not course["time"]:
        return f'<p class="empty">{escape(title)}: not enough data yet</p>'
    times = np.asarray(course["time"], dtype=float) - course["time"][0]
    span = float(times[-1]) or 1.0
    y_low, y_high = _y_range(course)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t):
        return LEFT + plot_w * np.asarray(t) / span

    def y(v):
        return TOP + plot_h * (y_high - np.asarray(v)) / (y_high - y_low)

    clip = f"course{next(_ids)}"
    band = np.concatenate([np.column_stack([x(times), y(course["low"])]),
                           np.column_stack([x(times), y(course["high"])])[::-1]])
    line = np.column_stack([x(times), y(course["difference"])])
    parts = [
        f'<clipPath id="{clip}"><rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/></clipPath>',
        f'<g clip-path="url(#{clip})"><polygon points="{_points(band)}" fill="#4c78a8" fill-opacity="0.25"/>'
        f'<polyline points="{_points(line)}" fill="none" stroke="#1f3b63" stroke-width="2"/>'
        f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#888" '
        'stroke-dasharray="4 3"/></g>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#bbb"/>',
    ]
    for value in np.linspace(y_low, y_high, TICKS):
        parts.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" font-size="11" text-anchor="end">'
                     f'{value * 100:+.1f}</text>')
    for t in np.linspace(0, span, TICKS):
        parts.append(f'<text x="{x(t):.1f}" y="{TOP + plot_h + 16}" font-size="11" text-anchor="middle">'
                     f'{escape(_elapsed(t, span))}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 6}" font-size="11" text-anchor="middle">'
                 'time since the test had enough data (line: estimate; band: 95% confidence sequence; '
                 'points of %)</text>')
    return (f'<figure><figcaption>{escape(title)}</figcaption><svg role="img" aria-label="{escape(title)}" '
            f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">' + "".join(parts) + "</svg></figure>")


def _points(xy: np.ndarray) -> str:
    return " ".join(f"{px:.1f},{py:.1f}" for px, py in xy)
