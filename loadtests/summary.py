"""One row per network for summary.json and the page: served throughput against the honest limit and,
for the reference networks, against each peer."""

from __future__ import annotations

from zooserve.zoo import model_info
from zooserve.zoo.runtimes import chosen_runtime

STOCK_BEST = ("stock_best_1w", "stock_best_2w")


def _served(details: dict) -> dict:
    """Our stack's figures: the best step by median over the rounds beside the peers, else the best step."""
    if "peers" not in details:
        return details["ours"] | {"stepped_users": [step["users"] for step in details["steps"]]}
    ours = details["peers"]["systems"]["ours"]
    best = ours["best"]
    return {"rps": best["median_rps"], "users": ours["best_users"], "p50_ms": best["p50_ms"], "p95_ms": best["p95_ms"],
            "p99_ms": best["p99_ms"], "failures": best["failures"], "loadgen_cpu_share": best["loadgen_cpu_share"],
            "stepped_users": sorted(ours["steps"]), "rps_rounds": best["rps"]}


def _peer_columns(peers: dict) -> dict:
    systems, ratios = peers["systems"], peers["ratios"]
    best_stock = max(STOCK_BEST, key=lambda key: systems[key]["best"]["median_rps"])
    return {"stock_rps": systems["stock_default"]["best"]["median_rps"],
            "stock_best_rps": systems[best_stock]["best"]["median_rps"], "stock_best_config": best_stock,
            "litserve_rps": systems["litserve"]["best"]["median_rps"],
            "vs_stock_default": ratios["stock_default"], "vs_stock_best": ratios[best_stock],
            "vs_litserve": ratios["litserve"]}


def summarize(names: list[str], limits: dict, ours: dict, fine_overhead: list[dict]) -> list[dict]:
    rows = []
    for name in names:
        served, best = _served(ours[name]), limits[name]["best"]
        row = {"name": name, "seed_top1": model_info(name).seed_top1, "runtime": chosen_runtime(name),
               **{key: served[key] for key in ("rps", "users", "p50_ms", "p95_ms", "p99_ms", "failures",
                                               "loadgen_cpu_share", "stepped_users")},
               "limit_rps": best["median"], "limit_batch": best["batch"], "limit_runtime": best["runtime"],
               "limit_layout": f"{best['processes']} x {best['threads']}", "ratio_to_limit": served["rps"] / best["median"]}
        details = ours[name]
        for protocol in ("direct", "grpc", "v2"):
            if protocol in details:
                row[f"{protocol}_rps"], row[f"{protocol}_p50_ms"] = details[protocol]["rps"], details[protocol]["p50_ms"]
        row.setdefault("direct_rps", None)
        if "limit_again" in details:  # the limit's best configuration timed again after our runs
            row["limit_again_rps"] = details["limit_again"]["median"]
        if "rest" in details:  # ours once more after the peers' rounds, every peer stopped
            row["rps_alone"] = details["rest"]["rps"]
        row["cpu_ms_per_answer"] = {path: details[path]["cpu_ms_per_answer"] for path in ("rest", "direct")
                                    if "cpu_ms_per_answer" in details.get(path, {})}
        if "peers" in details:
            row |= _peer_columns(details["peers"])
        fine = next((o for o in fine_overhead if o["model"] == name), None)
        if fine:  # the sub-millisecond measurement (loadtests/overhead.py), REST against REST
            row["gateway_overhead_p50_ms"] = fine["added"]["gateway REST"]["p50_ms"]
            row["gateway_overhead_p99_ms"] = fine["added"]["gateway REST"]["p99_ms"]
        rows.append(row)
    return rows
