"""The A/B report as an HTML page: a table per variant, accuracy with its 95% interval as SVG bars, each variant
against the control (sequential and fixed-horizon), and charts of each comparison over time (chart.py).

Plain HTML and inline SVG, no scripts or external assets, so it renders anywhere (and offline).
"""

from __future__ import annotations

from html import escape
from typing import Any

from .chart import course_chart

BAR_WIDTH = 360
TEXT_WIDTH = 190
ROW_HEIGHT = 46


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _accuracy_chart(variants: list[dict[str, Any]]) -> str:
    """Per variant a bar of its accuracy, its 95% interval as a line across it, the figures beside it (within the
    drawing: TEXT_WIDTH holds the longest, "100.0% [100.0%, 100.0%]"), the variant's name above."""
    rows = []
    for i, v in enumerate(variants):
        y = 8 + i * ROW_HEIGHT
        label = f'<text x="0" y="{y + 12}" font-size="13">{escape(v["variant"])} ({escape(v["model"])})</text>'
        if v["accuracy"] is None:
            rows.append(label + f'<text x="0" y="{y + 32}" font-size="12" fill="#777">no feedback yet</text>')
            continue
        low, high = v["accuracy_ci"]
        rows.append(
            label
            + f'<rect x="0" y="{y + 18}" width="{BAR_WIDTH * v["accuracy"]:.1f}" height="18" fill="#4c78a8"/>'
            + f'<line x1="{BAR_WIDTH * low:.1f}" x2="{BAR_WIDTH * high:.1f}" y1="{y + 27}" y2="{y + 27}" '
            'stroke="#111" stroke-width="2"/>'
            + f'<text x="{BAR_WIDTH + 10}" y="{y + 32}" font-size="12">{_pct(v["accuracy"])} '
            f'[{_pct(low)}, {_pct(high)}]</text>'
        )
    width, height = BAR_WIDTH + 10 + TEXT_WIDTH, 12 + ROW_HEIGHT * len(variants)
    return (f'<svg role="img" aria-label="accuracy by variant" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">' + "".join(rows) + "</svg>")


def _variant_rows(variants: list[dict[str, Any]], stopped: dict[str, str]) -> str:
    rows = []
    for v in variants:
        status = f'stopped: {escape(stopped[v["variant"]])}' if v["variant"] in stopped else "serving"
        rows.append(
            "<tr>" + "".join(f"<td>{cell}</td>" for cell in (
                escape(v["variant"]), escape(v["model"]), v["requests"], _pct(v["error_rate"]),
                _ms(v["latency_ms"]["p50"]), _ms(v["latency_ms"]["p95"]), _ms(v["latency_ms"]["p99"]),
                f'{v["labelled"]}', _pct(v["accuracy"]), _pct(v["agreement_with_control"]), status,
            )) + "</tr>"
        )
    return "".join(rows)


def _difference(figures: dict[str, float], p_name: str) -> str:
    if figures.get("low") == -1 and figures.get("high") == 1:
        return "not enough data yet"
    interval = f' [{figures["low"]:+.1%}, {figures["high"]:+.1%}]' if "low" in figures else ""
    return f'{figures["difference"]:+.1%}{interval} ({p_name} = {figures["p_value"]:.3g})'


def _comparison_rows(comparisons: list[dict[str, Any]]) -> str:
    rows = []
    for c in comparisons:
        running, lat = c["sequential"], c["latency_ms"]
        rows.append(
            f'<tr><td>{escape(c["variant"])} vs {escape(c["against"])}</td>'
            f'<td>{_difference(running["accuracy"], "always-valid p")}</td>'
            f'<td>{_difference(c["accuracy"], "p")}</td>'
            f'<td>{_difference(running["error_rate"], "always-valid p")}</td>'
            f'<td>{_difference(c["error_rate"], "p")}</td>'
            f'<td>{lat["difference"]:+.1f} ms (p = {lat["p_value"]:.3g})</td>'
            f'<td><strong>{escape(c["verdict"])}</strong></td></tr>'
        )
    return "".join(rows)


def _courses(comparisons: list[dict[str, Any]]) -> str:
    charts = []
    for c in comparisons:
        for metric, name in (("accuracy", "accuracy"), ("error_rate", "error rate")):
            title = f'{c["variant"]} - {c["against"]}: {name}, estimate and 95% confidence sequence'
            charts.append(course_chart(c["course"][metric], title))
    return "".join(charts)


def render(report: dict[str, Any]) -> str:
    stopped = report["state"].get("stopped", {})
    weights = ", ".join(f"{escape(k)}: {w:g}" for k, w in report["state"].get("weights", {}).items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Experiment {escape(report["experiment"])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}}
td:first-child,th:first-child,td:last-child,th:last-child{{text-align:left}}
figure{{margin:1.2rem 0}}figcaption{{font-weight:600;margin-bottom:.3rem}}</style>
</head><body>
<h1>Experiment <code>{escape(report["experiment"])}</code></h1>
<p>Control: <code>{escape(report["control"])}</code>. Current weights: {weights}.</p>
<h2>Accuracy from feedback (95% Wilson interval)</h2>
{_accuracy_chart(report["variants"])}
<h2>Variants</h2>
<table><tr><th>variant</th><th>model</th><th>requests</th><th>error rate</th><th>p50 ms</th><th>p95 ms</th>
<th>p99 ms</th><th>labelled</th><th>accuracy</th><th>top-1 agreement with control</th><th>status</th></tr>
{_variant_rows(report["variants"], stopped)}</table>
<h2>Against the control</h2>
<p>Sequential figures (95% confidence sequence and always-valid p-value) stay valid however often this page is
read; the fixed-horizon p-values only at a sample size fixed in advance. The verdict uses the sequential ones.</p>
<table><tr><th>comparison</th><th>accuracy: sequential</th><th>accuracy: fixed-horizon</th>
<th>error rate: sequential</th><th>error rate: fixed-horizon</th><th>median latency</th><th>verdict</th></tr>
{_comparison_rows(report["comparisons"])}</table>
<h2>Over time</h2>
{_courses(report["comparisons"])}
</body></html>
"""
