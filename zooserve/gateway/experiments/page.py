"""The A/B report as an HTML page: a table per variant, accuracy with its 95% interval and latency as SVG bars.

Plain HTML and inline SVG, no scripts or external assets, so it renders anywhere (and offline).
"""

from __future__ import annotations

from html import escape
from typing import Any

BAR_WIDTH = 360


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _accuracy_chart(variants: list[dict[str, Any]]) -> str:
    rows = []
    for i, v in enumerate(variants):
        y = 10 + i * 34
        label = f'<text x="0" y="{y + 15}" font-size="13">{escape(v["variant"])} ({escape(v["model"])})</text>'
        if v["accuracy"] is None:
            rows.append(label + f'<text x="200" y="{y + 15}" font-size="12" fill="#777">no feedback yet</text>')
            continue
        low, high = v["accuracy_ci"]
        width = BAR_WIDTH * v["accuracy"]
        rows.append(
            label
            + f'<rect x="200" y="{y}" width="{width:.1f}" height="20" fill="#4c78a8"/>'
            + f'<line x1="{200 + BAR_WIDTH * low:.1f}" x2="{200 + BAR_WIDTH * high:.1f}" y1="{y + 10}" y2="{y + 10}" '
            'stroke="#111" stroke-width="2"/>'
            + f'<text x="{208 + BAR_WIDTH:.0f}" y="{y + 15}" font-size="12">{_pct(v["accuracy"])} '
            f'[{_pct(low)}, {_pct(high)}]</text>'
        )
    height = 20 + 34 * len(variants)
    return (f'<svg role="img" aria-label="accuracy by variant" width="{BAR_WIDTH + 330}" height="{height}">'
            + "".join(rows) + "</svg>")


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


def _comparison_rows(comparisons: list[dict[str, Any]]) -> str:
    rows = []
    for c in comparisons:
        acc, err, lat = c["accuracy"], c["error_rate"], c["latency_ms"]
        rows.append(
            f'<tr><td>{escape(c["variant"])} vs {escape(c["against"])}</td>'
            f'<td>{acc["difference"]:+.1%} (p = {acc["p_value"]:.3g})</td>'
            f'<td>{err["difference"]:+.1%} (p = {err["p_value"]:.3g})</td>'
            f'<td>{lat["difference"]:+.1f} ms (p = {lat["p_value"]:.3g})</td>'
            f'<td><strong>{escape(c["verdict"])}</strong></td></tr>'
        )
    return "".join(rows)


def render(report: dict[str, Any]) -> str:
    stopped = report["state"].get("stopped", {})
    weights = ", ".join(f"{escape(k)}: {w:g}" for k, w in report["state"].get("weights", {}).items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Experiment {escape(report["experiment"])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}}td:first-child,th:first-child{{text-align:left}}</style>
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
<table><tr><th>comparison</th><th>accuracy</th><th>error rate</th><th>median latency</th><th>verdict</th></tr>
{_comparison_rows(report["comparisons"])}</table>
</body></html>
"""
