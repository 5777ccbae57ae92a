"""docs/benchmarks.md and its charts, from one bench run's summary.json.

``make bench`` writes them itself; ``python -m loadtests.report RUN_DIR [--output docs/NAME.md]`` writes
them again from a kept run (a shorter run of a few networks goes to its own page, charts prefixed NAME-).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from zooserve.zoo import model_info

from .runner import STEPPING
from .targets import cpu_table, ratio_text, targets_table

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"


def pareto_front(points: list[tuple[str, float, float]]) -> set[str]:
    """Names that no other network beats on both throughput and accuracy."""
    return {name for name, rps, acc in points
            if not any(r >= rps and a >= acc and (r > rps or a > acc) for _, r, a in points)}


def _chart_names(docs: Path) -> tuple[str, str]:
    prefix = "" if docs == DOCS else f"{docs.stem}-"
    return f"{prefix}throughput.png", f"{prefix}accuracy_vs_throughput.png"


def _charts(rows: list[dict], run_dir: Path, docs: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = docs.parent / "img"  # beside the page, as its links expect
    images.mkdir(parents=True, exist_ok=True)
    ordered = sorted(rows, key=lambda r: r["rps"])
    fig, ax = plt.subplots(figsize=(9, max(3, 0.28 * len(rows))))
    ax.barh([r["name"] for r in ordered], [r["limit_rps"] for r in ordered], color="#ddd", label="limit (bare model)")
    ax.barh([r["name"] for r in ordered], [r["rps"] for r in ordered], color="#4c78a8", label="zooserve")
    for i, r in enumerate(ordered):
        ax.text(max(r["rps"], r["limit_rps"]) * 1.02, i, f"{r['ratio_to_limit']:.0%}", va="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("images/s (log scale); label: share of the limit")
    ax.legend(loc="lower right")
    fig.tight_layout()
    throughput_png, accuracy_png = _chart_names(docs)
    fig.savefig(images / throughput_png, dpi=110)
    plt.close(fig)

    points = [(r["name"], r["rps"], model_info(r["name"]).seed_top1) for r in rows]
    points = [p for p in points if p[2] is not None]
    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, rps, acc in points:
        on_front = name in front
        ax.scatter(rps, acc, color="#d62728" if on_front else "#4c78a8", s=30 if on_front else 15)
        ax.annotate(name, (rps, acc), fontsize=6, xytext=(3, 2), textcoords="offset points")
    front_points = sorted((rps, acc) for name, rps, acc in points if name in front)
    ax.plot([p[0] for p in front_points], [p[1] for p in front_points], color="#d62728", lw=1, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("served images/s (log scale)")
    ax.set_ylabel("seed table top-1 accuracy (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(images / accuracy_png, dpi=110)
    plt.close(fig)
    for png in (throughput_png, accuracy_png):
        shutil.copy(images / png, run_dir / png)
    return sorted(front)


def _fmt(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _added(row: dict) -> str:
    if "gateway_overhead_p50_ms" not in row:
        return "-"
    return f"{row['gateway_overhead_p50_ms']:+.2f} / {row['gateway_overhead_p99_ms']:+.2f}"


# the rule of each run's ``stepping`` (runner.STEPPING when it ran), as the page says it
STEPPING_RULES = {
    STEPPING: "two steps in a row adding less than 5%, never fewer users than workers x batch size; each step "
              "counted from the moment all its users run",
    "two flat steps, at least workers x batch users":
        "two steps in a row adding less than 5%, and never fewer users than workers x batch size",
    # before the floor: at 1-4 users TorchServe batches the requests on one worker while the other idles
    "two flat steps": "two steps in a row adding less than 5%; a few networks stopped at 1-4 users: see the steps",
}


def _stepping(summary: dict) -> str:
    # runs before the rule changed have none: one flat step stopped them, often at 2 or 4 users
    return STEPPING_RULES.get(summary.get("stepping"), "one step adding less than 5% stopped it, often too early: "
                                                        "see the steps")


def _steps(row: dict) -> str:
    return "/".join(str(users) for users in row.get("stepped_users", [])) or "-"


def _protocol_table(rows: list[dict]) -> list[str]:
    rows = [r for r in rows if "grpc_rps" in r]
    if not rows:
        return []
    lines = ["", "## REST vs gRPC vs v2 under load (locust, same users as the REST row)", "",
             "| model | users | REST req/s | REST p50 ms | gRPC req/s | gRPC p50 ms | v2 REST req/s | v2 p50 ms |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    return lines + [f"| `{r['name']}` | {r['users']} | {_fmt(r['rps'])} | {_fmt(r['p50_ms'], 0)} | {_fmt(r['grpc_rps'])} | "
                    f"{_fmt(r['grpc_p50_ms'], 0)} | {_fmt(r.get('v2_rps'))} | {_fmt(r.get('v2_p50_ms'), 0)} |"
                    for r in rows]


def _overhead_tables(measured: list[dict]) -> list[str]:
    if not measured:
        return []
    lines = ["", "## Gateway overhead", "",
             "One sequential client, the paths interleaved (loadtests/overhead.py), latency by `time.perf_counter`. "
             "*Added* is a gateway path's p50 minus TorchServe's over the same transport (REST against REST, gRPC "
             "against gRPC), with its 95% interval where the run kept one (bootstrap over the rounds); the gateway "
             "itself reaches TorchServe over HTTP whichever protocol the client speaks (docs/gateway.md).", "",
             "| model | path | requests | p50 ms | p99 ms | added p50 ms (95% interval) | added p99 ms |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for entry in measured:
        for path, latency in entry["latency"].items():
            added = entry["added"].get(path)
            extra = f"{_added_p50(added)} | {added['p99_ms']:+.2f}" if added else "- | -"
            lines.append(f"| `{entry['model']}` | {path} | {latency['requests']} | {latency['p50_ms']:.2f} | "
                         f"{latency['p99_ms']:.2f} | {extra} |")
    return lines


def _added_p50(added: dict) -> str:
    interval = added.get("p50_ci95_ms")  # runs before the interleaved measurement have none
    return f"{added['p50_ms']:+.2f}" + (f" ({interval[0]:+.2f} to {interval[1]:+.2f})" if interval else "")


def _limit_rule(summary: dict) -> str:
    if "limits" not in summary.get("details", {}):  # runs before the honest limit
        return ("- **limit**: the bare model in a tight loop (decode with torchvision.io, resize/crop/normalize, "
                "forward), eager, channels_last, float32, at its best over batch sizes 1, 2, 4, 8 (stepped until one "
                "gained less than 5%) and two layouts of the cores, one short run each.")
    limits = next(iter(summary["details"]["limits"].values()))
    runtimes = sorted({c["runtime"] for found in summary["details"]["limits"].values() for c in found["configurations"]})
    return ("- **limit**: the best this machine does with the network at the same numerics (loadtests/limit.py): a "
            "tight loop of decode (torchvision.io), resize/crop/normalize and the model, no server, over every "
            f"runtime tried whose logits agree with eager ({', '.join(runtimes)}; any left out is in summary.json with the reason), "
            "batch sizes "
            f"{', '.join(str(b) for b in sorted({c['batch'] for c in limits['configurations']}))} and both layouts of "
            "the cores (one process with all of them, or one single-threaded process per core timed over the same "
            f"interval; layout = processes x threads); every configuration {limits['rounds']} times "
            f"{limits['seconds']:g} s, interleaved; the best median counts. Every configuration's median and range "
            "are in summary.json (`details.limits`), the reference networks' below.")


def _peers_rule(summary: dict) -> str:
    if summary.get("rounds") is None:  # runs before the peers' rounds
        return ("- **stock**: TorchServe 0.12 with its built-in `image_classifier` handler on the same weights and "
                "load, at its default settings (default workers) and with one worker (`best`).")
    return (f"- **peers** (reference networks): our stack, stock TorchServe and LitServe through the same steps of "
            f"users, interleaved in {summary['rounds']} rounds (loadtests/peers.py){_paused(summary)}; each "
            "system's best step by median; *vs* is ours over the peer per round, geometric mean with its 95% "
            "interval. What each ran is under *Peers* below.")


def _paused(summary: dict) -> str:
    """Runs that account CPU per answer also stop the idle peers (loadtests/bench.py ``Peers.paused``)."""
    rows = summary.get("models", [])
    if any(row.get("cpu_ms_per_answer") for row in rows):
        return ", every other system stopped (SIGSTOP) while one is measured"
    return (", the other systems left running idle (LitServe's idle polling took about 15% of the cores "
            "from whichever system was measured)")


PEER_NAMES = {"ours": "zooserve (raw photograph)", "ours_form": "zooserve (multipart form)",
              "stock_default": "stock TorchServe, defaults", "stock_best_1w": "stock TorchServe, best (1 worker)",
              "stock_best_2w": "stock TorchServe, best (2 workers)", "litserve": "LitServe 0.2.19"}


def _peer_tables(ours: dict) -> list[str]:
    compared = {name: details["peers"] for name, details in ours.items() if "peers" in details}
    if not compared:
        return []
    lines = ["", "## Peers", "",
             "Same photograph (tests/data/chelsea.jpg), same fixed-seed weights, same steps of users for every "
             "system, closed loop. What each ran:", "",
             "- zooserve: `make serve`'s stack (gateway + TorchServe with the zoo handler, 2 workers x 1 thread, "
             "batches of 4 / 5 ms, the archive's runtime); raw body, or the multipart form the LitServe peer takes.",
             "- stock TorchServe 0.12: built-in `image_classifier` handler, eager model file and state dict "
             "(loadtests/stock.py); its configuration is in each table.",
             "- LitServe 0.2.19 (loadtests/litserve_peer.py): 2 workers x 1 thread on the CPU, its batching "
             "(max 4, 5 ms), PIL decode and torchvision's eval transform, eager, channels_last; the multipart form.", ""]
    for name, peers in compared.items():
        described = peers.get("described", {})
        lines += [f"### `{name}`", "", "| system | configuration | best users | req/s median (range over rounds) "
                  "| p50 ms | failures | zooserve / it (95% interval) |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for system, summary in peers["systems"].items():
            best = summary["best"]
            lines.append(f"| {PEER_NAMES.get(system, system)} | {described.get(system, '-')} | {summary['best_users']} | "
                         f"{best['median_rps']:.1f} ({best['min_rps']:.1f}-{best['max_rps']:.1f}) | {best['p50_ms']:.0f} | "
                         f"{best['failures']} | {ratio_text(peers['ratios'].get(system))} |")
        lines.append("")
    return lines


def _limit_tables(limits: dict, rows: list[dict]) -> list[str]:
    shown = [r["name"] for r in rows if "vs_litserve" in r and r["name"] in limits]
    if not shown:
        return []
    lines = ["", "## The limit's configurations (reference networks)", "",
             "Images/s, median over the rounds (range in summary.json); layout = processes x threads.", ""]
    for name in shown:
        configurations = limits[name]["configurations"]
        batches = sorted({c["batch"] for c in configurations})
        lines += [f"### `{name}`", "", "| runtime | layout | " + " | ".join(f"batch {b}" for b in batches) + " |",
                  "| --- | --- |" + " --- |" * len(batches)]
        for runtime, processes in sorted({(c["runtime"], c["processes"]) for c in configurations}):
            cells = {c["batch"]: c for c in configurations if c["runtime"] == runtime and c["processes"] == processes}
            layout = f"{processes} x {next(iter(cells.values()))['threads']}"
            lines.append(f"| {runtime} | {layout} | " + " | ".join(f"{cells[b]['median']:.1f}" for b in batches) + " |")
        left_out = limits[name].get("left_out") or {}
        lines += [f"Left out: {'; '.join(f'{k}: {v}' for k, v in left_out.items())}." if left_out else "", ""]
    return lines


def write_docs(summary: dict, run_dir: Path, docs: Path = DOCS) -> None:
    rows, machine = summary["models"], summary["machine"]
    front = _charts(rows, run_dir, docs)
    throughput_png, accuracy_png = _chart_names(docs)
    lines = [
        "# Benchmarks", "",
        f"Generated by `make bench` (`python -m loadtests.bench`) in one run of {summary['seconds'] / 60:.0f} minutes; "
        f"raw figures in `loadtests/results/{run_dir.name}/`. Never edited by hand.", "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB RAM, "
        f"GPU: {machine['gpu'] or 'none'}; Python {machine['python']}, torch {machine['torch']} "
        f"({machine['torch_threads']} threads), TorchServe {machine['torchserve']}.", "",
        "How each figure was obtained:",
        _limit_rule(summary),
        f"- **zooserve**: locust (FastHttpUser, closed loop, {summary['duration_s']:.0f} s per step) POSTing "
        "tests/data/chelsea.jpg to the gateway's `/predict/<model>`; users stepped 1, 2, 4, ... until throughput "
        f"stopped growing ({_stepping(summary)}); the best step is reported, with the users it had and the steps "
        "that were run; for the reference networks, the best step of the rounds beside the peers (below), by "
        "median. The load generator runs on the same machine; its CPU share is in the last column.",
        "- **direct** (reference networks): the same load straight at our TorchServe (`/predictions/<model>`), "
        "same users.",
        "- **gateway +p50/+p99**: what the gateway adds, measured to the microsecond by one sequential client "
        "(loadtests/overhead.py; locust rounds latencies over 100 ms to 10 ms): see *Gateway overhead* below.",
        _peers_rule(summary),
        "- our serving settings (2 single-threaded workers per model on 2 cores, batches of 4, 5 ms delay) were "
        "chosen by measurement: [tuning.md](tuning.md).", "",
    ]
    if not machine["gpu"]:
        lines += ["**GPU figures are missing.** No GPU was available to this run, and none has been lent to the "
                  "sessions that ran this benchmark so far: the GPU path (half precision, channels_last, pinned "
                  "memory, nvJPEG decoding with `torchvision.io.decode_jpeg(device=\"cuda\")`, batch size) is written "
                  "but has not been measured. Run `make bench MODELS=resnet50,mobilenet_v2` on a GPU machine to "
                  "fill this in.", ""]
    lines += [
        "| model | seed top-1 % | runtime | zooserve req/s | users (steps) | p50 ms | p95 ms | p99 ms | failures "
        "| limit img/s (runtime, layout, batch) | of limit | direct req/s | gateway +p50 / +p99 ms | stock default "
        "req/s | stock best req/s | vs stock best (95%) | LitServe req/s | vs LitServe (95%) | loadgen CPU |",
        "| --- |" + " --- |" * 19,
    ]
    for r in rows:
        lines.append(
            f"| `{r['name']}` | {_fmt(r.get('seed_top1'), 2)} | {r.get('runtime', 'eager')} | {_fmt(r['rps'])} | "
            f"{r['users']} ({_steps(r)}) | {_fmt(r['p50_ms'], 0)} | {_fmt(r['p95_ms'], 0)} | {_fmt(r['p99_ms'], 0)} | "
            f"{r['failures']} | {_fmt(r['limit_rps'])} ({r.get('limit_runtime', 'eager')}, "
            f"{r.get('limit_layout', '1 x all')}, {r['limit_batch']}) | {r['ratio_to_limit']:.0%} | "
            f"{_fmt(r.get('direct_rps'))} | {_added(r)} | {_fmt(r.get('stock_rps'))} | {_fmt(r.get('stock_best_rps'))} | "
            f"{ratio_text(r.get('vs_stock_best'))} | {_fmt(r.get('litserve_rps'))} | {ratio_text(r.get('vs_litserve'))} | "
            f"{r['loadgen_cpu_share']:.0%} |"
        )
    details = summary.get("details", {})
    lines += targets_table(rows, details.get("limits", {})) + cpu_table(rows, machine["cores"])
    lines += _peer_tables(details.get("ours", {})) + _limit_tables(details.get("limits", {}), rows)
    lines += _protocol_table(rows) + _overhead_tables(summary.get("overhead", []))
    lines += ["", "## Charts", "", f"![throughput per network against its limit](img/{throughput_png})", "",
              f"![seed top-1 accuracy against served throughput](img/{accuracy_png})", "",
              f"Pareto front (no other network is both faster and more accurate): {', '.join(front) or '-'}.", ""]
    docs.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m loadtests.report", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a loadtests/results/<timestamp>/ folder")
    parser.add_argument("--output", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    write_docs(json.loads((args.run_dir / "summary.json").read_text()), args.run_dir, args.output.resolve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
