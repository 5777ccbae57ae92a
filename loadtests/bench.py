"""``make bench``: for each network, the limit, our stack and (for the reference networks) stock TorchServe,
side by side in one run, written to loadtests/results/<timestamp>/ and docs/benchmarks.md.

    python -m loadtests.bench [--models a,b] [--duration S] [--concurrency N] [--no-docs]

(a) the limit: the bare model in a tight loop on this machine, decode and preprocessing included, at its
best batch size, channels_last, float32, the same torch threads as a serving worker (all cores);
(b) our stack (TorchServe with the zoo handler + the gateway) under locust, closed loop, users stepped up
until throughput stops growing; for the reference networks, the same load straight at our TorchServe and
over gRPC and v2 too, and the gateway's overhead to the microsecond (overhead.py);
(c) stock TorchServe (built-in image_classifier handler) on the same weights and load, at its default
settings and with one worker.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
from tqdm import tqdm

from zooserve.handler.bench import best_throughput
from zooserve.machine import describe_machine
from zooserve.store.build import ArchiveOptions, build_archive
from zooserve.torchserve import TorchServe, TorchServeKeys, TorchServePorts
from zooserve.zoo import list_models, model_info

from .overhead import Paths
from .overhead import measure as overhead
from .report import write_docs
from .runner import STEPPING, run_locust, saturate, start_stack
from .stock import build_stock_archive, stock_supported

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "loadtests" / "results"
REFERENCE = ("resnet18", "resnet50", "mobilenet_v2")
OVERHEAD_MODEL = "resnet8_digits"  # a forward pass of about 2 ms
PORTS = {"rest": 18400, "grpc": 18451, "ts_inference": 18480, "ts_management": 18481, "ts_metrics": 18482,
         "ts_grpc": 18470, "ts_grpc_management": 18471}
STOCK_PORTS = TorchServePorts(18580, 18581, 18582, 18570, 18571)


def overhead_models(names: list[str]) -> list[str]:
    """A tiny network (where the gateway's share is plain to see) and the reference networks benched."""
    return [OVERHEAD_MODEL, *[n for n in REFERENCE if n in names]]


def load_through_gateway(host: str, name: str) -> None:
    """One prediction through the gateway, which registers the model on TorchServe on first use."""
    answer = httpx.post(f"{host}/predict/{name}", content=(ROOT / "tests/data/chelsea.jpg").read_bytes(),
                        headers={"Content-Type": "image/jpeg"}, timeout=1800)
    answer.raise_for_status()


def measure_overhead(name: str, host: str, token: str, requests: int) -> dict:
    load_through_gateway(host, name)
    paths = Paths(name, (ROOT / "tests/data/chelsea.jpg").read_bytes(), host, f"127.0.0.1:{PORTS['grpc']}",
                  f"http://127.0.0.1:{PORTS['ts_inference']}", f"127.0.0.1:{PORTS['ts_grpc']}", token)
    try:
        return overhead(paths, requests)
    finally:
        paths.close()


def bench_ours(names: list[str], args, out: Path, workdir: Path) -> dict[str, dict]:
    store, options = workdir / "store", ArchiveOptions()
    # up to a full batch on each worker TorchServe keeps the other workers idle: step at least that far
    min_users = options.workers * options.batch_size
    for name in {*names, *overhead_models(names)}:
        build_archive(name, store, options)
    ts_dir = workdir / "torchserve"
    stack = start_stack(store, ts_dir, PORTS, sorted({*names, *overhead_models(names)}))
    host, results = f"http://127.0.0.1:{PORTS['rest']}", {}
    try:
        token = TorchServeKeys.read(ts_dir).inference
        for name in tqdm(names, desc="our stack", unit="model"):
            load_through_gateway(host, name)  # before anything is timed
            best, steps = saturate(lambda u: run_locust(host, name, "rest", u, args.duration, out / f"{name}_rest_u{u}"),
                                   args.concurrency, min_users=min_users)
            results[name] = {"ours": best.as_dict(), "steps": [s.as_dict() for s in steps]}
            if name in REFERENCE:  # the same load straight at TorchServe, and the other protocols
                direct = run_locust(f"http://127.0.0.1:{PORTS['ts_inference']}", name, "torchserve", best.users,
                                    args.duration, out / f"{name}_direct_u{best.users}", token=token)
                results[name]["direct"] = direct.as_dict()
                grpc_run = run_locust(host, name, "grpc", best.users, args.duration, out / f"{name}_grpc",
                                      grpc_target=f"127.0.0.1:{PORTS['grpc']}")
                v2_run = run_locust(host, name, "v2", best.users, args.duration, out / f"{name}_v2")
                results[name] |= {"grpc": grpc_run.as_dict(), "v2": v2_run.as_dict()}
        results["overhead"] = [measure_overhead(name, host, token, args.overhead_requests)
                               for name in tqdm(overhead_models(names), desc="gateway overhead", unit="model")]
    finally:
        stack.send_signal(signal.SIGINT)
        stack.wait(120)
    return results


def bench_stock(names: list[str], args, out: Path, workdir: Path) -> dict[str, dict]:
    if not names:  # TorchServe refuses to start on an empty model store
        return {}
    store = workdir / "stock_store"
    for name in names:
        build_stock_archive(name, store)
    results = {}
    with TorchServe(workdir / "stock_ts", store, STOCK_PORTS, template=None) as ts:
        keys = ts.keys()
        management = httpx.Client(base_url=ts.management_url, timeout=600,
                                  headers={"Authorization": f"Bearer {keys.management}"})
        for name in tqdm(names, desc="stock TorchServe", unit="model"):
            # TorchServe's default for models it loads at start-up: one worker per core
            management.post("/models", params={"url": f"{name}.mar", "synchronous": "true",
                                               "initial_workers": os.cpu_count()}).raise_for_status()
            workers = len(management.get(f"/models/{name}").json()[0]["workers"])
            run = lambda u, tag: run_locust(ts.inference_url, name, "torchserve", u, args.duration,  # noqa: E731
                                            out / f"{name}_stock_{tag}_u{u}", token=keys.inference)
            default, _ = saturate(lambda u: run(u, "default"), args.concurrency)
            management.put(f"/models/{name}", params={"min_worker": 1, "max_worker": 1, "synchronous": "true"})
            one, _ = saturate(lambda u: run(u, "1worker"), args.concurrency)
            results[name] = {"default_workers": workers, "default": default.as_dict(), "one_worker": one.as_dict()}
            management.delete(f"/models/{name}")
    return results


def summarize(names, limits, ours, stock, fine_overhead: list[dict]) -> list[dict]:
    rows = []
    for name in names:
        mine, direct = ours[name]["ours"], ours[name].get("direct", {})
        limit_rps, limit_config = limits[name]
        row = {
            "name": name, "seed_top1": model_info(name).seed_top1, "rps": mine["rps"], "p50_ms": mine["p50_ms"],
            "p95_ms": mine["p95_ms"], "p99_ms": mine["p99_ms"], "failures": mine["failures"], "users": mine["users"],
            "stepped_users": [step["users"] for step in ours[name]["steps"]],
            "limit_rps": limit_rps, "limit_batch": limit_config["batch"],
            "limit_layout": f"{limit_config['processes']} x {limit_config['threads']}", "ratio_to_limit": mine["rps"] / limit_rps,
            "direct_rps": direct.get("rps"), "direct_p50_ms": direct.get("p50_ms"),
            "loadgen_cpu_share": mine["loadgen_cpu_share"],
        }
        for protocol in ("grpc", "v2"):
            if protocol in ours[name]:
                row[f"{protocol}_rps"], row[f"{protocol}_p50_ms"] = (ours[name][protocol]["rps"],
                                                                     ours[name][protocol]["p50_ms"])
        fine = next((o for o in fine_overhead if o["model"] == name), None)
        if fine:  # the sub-millisecond measurement (loadtests/overhead.py), REST against REST
            row["gateway_overhead_p50_ms"] = fine["added"]["gateway REST"]["p50_ms"]
            row["gateway_overhead_p99_ms"] = fine["added"]["gateway REST"]["p99_ms"]
        if name in stock:
            row["stock_rps"] = stock[name]["default"]["rps"]
            row["stock_default_workers"] = stock[name]["default_workers"]
            row["stock_best_rps"] = max(stock[name]["default"]["rps"], stock[name]["one_worker"]["rps"])
            row["ratio_to_stock"] = mine["rps"] / row["stock_rps"] if row["stock_rps"] else None
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="", help="comma-separated names (default: every seed model + refs)")
    parser.add_argument("--duration", type=float, default=20, help="seconds per locust run")
    parser.add_argument("--concurrency", type=int, default=0, help="fixed users (default: found by stepping)")
    parser.add_argument("--limit-seconds", type=float, default=6)
    parser.add_argument("--overhead-requests", type=int, default=400,
                        help="rounds (one request per path each) of the gateway overhead measurement")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-docs", action="store_true", help="do not regenerate docs/benchmarks.md")
    args = parser.parse_args(argv)
    names = [n for n in args.models.split(",") if n] or sorted(set(list_models(seed_only=True)) | set(REFERENCE))
    out = args.results / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True)
    started = time.time()
    # the bare model's best over worker layouts and batch sizes, and the configuration that gave it
    limits = {name: best_throughput(name, args.limit_seconds) for name in tqdm(names, desc="limits", unit="model")}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        ours = bench_ours(names, args, out, Path(tmp))
        stock = bench_stock([n for n in names if stock_supported(n)], args, out, Path(tmp))
    fine = ours.pop("overhead")
    summary = {"machine": describe_machine(), "started": started, "seconds": time.time() - started,
               "duration_s": args.duration, "stepping": STEPPING,
               "models": summarize(names, limits, ours, stock, fine),
               "overhead": fine, "details": {"ours": ours, "stock": stock}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if not args.no_docs:
        write_docs(summary, out)
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
