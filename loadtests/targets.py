"""The benchmark's targets for the reference networks, met or missed, by how much, and why, from the run's
own figures (the page's *Targets* section).

The targets: served throughput at least ``OF_LIMIT`` of the honest limit, at least ``VS_STOCK_BEST`` x stock
TorchServe at its best configuration and ``VS_LITSERVE`` x LitServe, the REST gateway adding at most
``OVERHEAD_P50_MS`` at p50, no failures.

Why a ratio is what it is, as a product of measured factors (every one in summary.json):

- of the limit = (TorchServe alone, ``direct``, over the limit) x (through the gateway, over ``direct``):
  what TorchServe and the handler keep of the bare loop, and what the gateway, on the same cores, keeps of
  that;
- ours over a peer = (ours over our limit) x (our limit over eager's best limit configuration: what the
  runtime gains) / (the peer over eager's limit: what the peer keeps of the same eager model). The best
  a peer serving eager can be beaten by is therefore (runtime gain) / (peer's share): the ceiling, reached
  only by serving at the limit.

*Where the CPU goes* (``cpu_table``) is the first factor in milliseconds: the time each process group spent
per answer (loadtests/cpu.py) beside the limit's cores' time per image.
"""

from __future__ import annotations

from .cpu import GROUPS

OF_LIMIT, VS_STOCK_BEST, VS_LITSERVE, OVERHEAD_P50_MS = 0.85, 2.5, 1.5, 1.5


def eager_limit(limits: dict, name: str) -> float | None:
    """The best median of eager's limit configurations (what a server of the eager model could reach)."""
    eager = [c["median"] for c in limits.get(name, {}).get("configurations", []) if c["runtime"] == "eager"]
    return max(eager) if eager else None


def _verdict(value: float | None, target: float, at_most: bool = False) -> str:
    if value is None:
        return "not measured"
    met = value <= target if at_most else value >= target
    return "met" if met else f"missed by {abs(value - target) / target:.0%}"


def _vs_peer(row: dict, peer_rps: float, ratio: dict, target: float, eager: float | None) -> tuple[str, str]:
    value = ratio.get("ratio") if ratio else None
    if eager is None or not peer_rps:
        return _verdict(value, target), "-"
    gain, share = row["limit_rps"] / eager, peer_rps / eager
    why = (f"{row['ratio_to_limit']:.2f} of our limit x {gain:.2f} (runtime over eager's limit) / {share:.2f} "
           f"(the peer's share of eager's limit); ceiling at the limit {gain / share:.2f}x")
    return _verdict(value, target), why


def targets_table(rows: list[dict], limits: dict) -> list[str]:
    shown = [r for r in rows if "vs_litserve" in r]
    if not shown:
        return []
    lines = ["", "## Targets", "",
             f"Served at least {OF_LIMIT:.2f} of the limit, at least {VS_STOCK_BEST:g}x stock TorchServe at its best, "
             f"at least {VS_LITSERVE:g}x LitServe, the gateway adding at most {OVERHEAD_P50_MS:g} ms at p50, no "
             "failures. *Why* splits each ratio into measured factors (loadtests/targets.py says how); a peer "
             "serving the eager model can be beaten at most by the ceiling, ours serving exactly at the limit.", "",
             "| model | target | figure | verdict | why (measured factors) |", "| --- | --- | --- | --- | --- |"]
    for row in shown:
        name, eager = row["name"], eager_limit(limits, row["name"])
        direct = row.get("direct_rps")
        split = (f"TorchServe alone {direct / row['limit_rps']:.2f} of the limit x through the gateway "
                 f"{row['rps'] / direct:.2f} of TorchServe alone" if direct else "-")
        if row.get("limit_again_rps"):
            split += (f"; the limit's best configuration timed again after our runs: {row['limit_again_rps']:.1f} "
                      f"img/s against {row['limit_rps']:.1f} in the sweep (served: {row['rps'] / row['limit_again_rps']:.2f} "
                      "of it)")
        if row.get("cpu_ms_per_answer"):
            split += "; in milliseconds: *Where the CPU goes*"
        stock_verdict, stock_why = _vs_peer(row, row["stock_best_rps"], row["vs_stock_best"], VS_STOCK_BEST, eager)
        lit_verdict, lit_why = _vs_peer(row, row["litserve_rps"], row["vs_litserve"], VS_LITSERVE, eager)
        overhead = row.get("gateway_overhead_p50_ms")
        lines += [
            f"| `{name}` | of limit >= {OF_LIMIT:.2f} | {row['ratio_to_limit']:.2f} | "
            f"{_verdict(row['ratio_to_limit'], OF_LIMIT)} | {split} |",
            f"| `{name}` | vs stock best >= {VS_STOCK_BEST:g}x | {ratio_text(row['vs_stock_best'])} | "
            f"{stock_verdict} | {stock_why} |",
            f"| `{name}` | vs LitServe >= {VS_LITSERVE:g}x | {ratio_text(row['vs_litserve'])} | {lit_verdict} | "
            f"{lit_why} |",
            f"| `{name}` | gateway +p50 <= {OVERHEAD_P50_MS:g} ms | "
            f"{'-' if overhead is None else f'{overhead:+.2f} ms'} | "
            f"{_verdict(overhead, OVERHEAD_P50_MS, at_most=True)} | loadtests/overhead.py, one sequential client |",
            f"| `{name}` | failures = 0 | {row['failures']} | {'met' if row['failures'] == 0 else 'missed'} | - |",
        ]
    return lines


def ratio_text(ratio: dict | None) -> str:
    """A ratio with its 95% interval, as the page writes it."""
    if not ratio or ratio.get("ratio") is None:
        return "-"
    interval = ratio.get("ci95")
    return f"{ratio['ratio']:.2f}x" + (f" ({interval[0]:.2f}-{interval[1]:.2f})" if interval else "")


def cpu_table(rows: list[dict], cores: int) -> list[str]:
    """Per reference network and path (the gateway's REST, TorchServe alone), the CPU milliseconds each
    process group spent per answer, and the limit's: its cores' time per image."""
    shown = [r for r in rows if r.get("cpu_ms_per_answer")]
    if not shown:
        return []
    groups = [g for g in GROUPS if g != "idle peers"]  # every peer is stopped while ours runs
    lines = ["", "## Where the CPU goes (reference networks)", "",
             "Our stack at its best step with every peer stopped: CPU milliseconds per correct answer, summed per "
             "process group over every process on the machine (loadtests/cpu.py); *limit* is the cores' time per "
             "image of the bare loop at the limit. What the workers spend above it is the handler's and "
             "TorchServe's worker overhead; the other groups and the idle time are what the limit does not pay.", "",
             "| model | path | req/s | limit ms/image | " + " | ".join(f"{g} ms" for g in groups) + " |",
             "| --- | --- | --- | --- |" + " --- |" * len(groups)]
    for row in shown:
        for path, cpu in row["cpu_ms_per_answer"].items():
            rps = row["rps_alone"] if path == "rest" else row["direct_rps"]
            lines.append(f"| `{row['name']}` | {'gateway REST' if path == 'rest' else 'TorchServe alone'} | "
                         f"{rps:.1f} | {1000 * cores / row['limit_rps']:.2f} | "
                         + " | ".join(f"{cpu[g]:.2f}" for g in groups) + " |")
    return lines
