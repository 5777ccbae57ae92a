"""``make bench``: for each network, the honest limit and our stack, and for the reference networks our
stack beside its peers, written to loadtests/results/<timestamp>/ and docs/benchmarks.md.

    python -m loadtests.bench [--models a,b] [--duration S] [--concurrency N] [--rounds R] [--no-docs]

(a) the limit (limit.py): the best this machine does with the network at the same numerics, over every
runtime that agrees with eager, batch sizes 1-16 and both core layouts, each configuration measured in
interleaved rounds, every configuration kept in summary.json;
(b) our stack (TorchServe with the zoo handler, on the runtime chosen for each archive, + the gateway)
under locust, closed loop, users stepped up until throughput stops growing;
(c) for the reference networks, our stack and its peers (peers.py: stock TorchServe at its defaults and at
its best configuration, LitServe) through the same steps of users, interleaved in rounds, each ratio
with its 95% interval; then the same load straight at our TorchServe, over gRPC and v2, and the
gateway's overhead to the microsecond (overhead.py).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path

import httpx
from tqdm import tqdm

from zooserve.handler.runtimes import RUNTIME_NAMES
from zooserve.machine import describe_machine
from zooserve.store.build import ArchiveOptions, build_archive
from zooserve.torchserve import TorchServeKeys, TorchServePorts
from zooserve.zoo import list_models
from zooserve.zoo.runtimes import chosen_runtime

from .cpu import accounted
from .limit import BATCHES, limit
from .litserve_peer import start_litserve
from .overhead import Paths
from .overhead import measure as overhead
from .peers import STEPS, compare
from .report import write_docs
from .runner import STEPPING, LoadResult, run_locust, saturate, start_stack, wait_http
from .stock import build_stock_archive, register_stock, stock_configs, stock_server, stock_supported, unregister_stock
from .summary import summarize

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "loadtests" / "results"
REFERENCE = ("resnet18", "resnet50", "mobilenet_v2")
OVERHEAD_MODEL = "resnet8_digits"  # a forward pass of about 2 ms
PORTS = {"rest": 18400, "grpc": 18451, "ts_inference": 18480, "ts_management": 18481, "ts_metrics": 18482,
         "ts_grpc": 18470, "ts_grpc_management": 18471}
STOCK_PORTS = {name: TorchServePorts(18580 + 10 * i, 18581 + 10 * i, 18582 + 10 * i, 18583 + 10 * i, 18584 + 10 * i)
               for i, name in enumerate(stock_configs(1))}
LITSERVE_PORT = 18700
PHOTO = ROOT / "tests" / "data" / "chelsea.jpg"


def overhead_models(names: list[str]) -> list[str]:
    """A tiny network (where the gateway's share is plain to see) and the reference networks benched."""
    return [OVERHEAD_MODEL, *[n for n in REFERENCE if n in names]]


def load_through_gateway(host: str, name: str, patience_s: float = 1800) -> None:
    """One prediction through the gateway, which registers the model on TorchServe on first use. A first
    request that outlives the gateway's deadline (504, or 503 while it loads) is sent again: the
    gateway goes on loading the model behind it."""
    deadline = time.monotonic() + patience_s
    while True:
        answer = httpx.post(f"{host}/predict/{name}", content=PHOTO.read_bytes(),
                            headers={"Content-Type": "image/jpeg"}, timeout=patience_s)
        if answer.status_code not in (503, 504) or time.monotonic() > deadline:
            answer.raise_for_status()
            return
        time.sleep(1)


def measure_overhead(name: str, host: str, token: str, requests: int) -> dict:
    load_through_gateway(host, name)
    paths = Paths(name, PHOTO.read_bytes(), host, f"127.0.0.1:{PORTS['grpc']}",
                  f"http://127.0.0.1:{PORTS['ts_inference']}", f"127.0.0.1:{PORTS['ts_grpc']}", token)
    try:
        return overhead(paths, requests)
    finally:
        paths.close()


def _warm(url: str, **request) -> None:
    """A peer's first answer (its first batch pays for kernel selection and caches), before any timing."""
    for _ in range(2):
        httpx.post(url, timeout=600, **request).raise_for_status()


class Peers:
    """Stock TorchServe in each configuration (one instance each: threads are a process setting),
    started once for all the reference networks, and LitServe, started per network.

    Only the system being measured runs: every other peer's process group is stopped (SIGSTOP) for the
    run. Idle, LitServe's API server and workers poll their queues, which took about 15% of this machine's
    two cores from whichever system was measured beside them (loadtests/cpu_split.py --idle-peers)."""

    def __init__(self, names: list[str], workdir: Path, stack: ExitStack):
        self.workdir, self.configs = workdir, stock_configs(os.cpu_count() or 1)
        store = workdir / "stock_store"
        for name in names:
            build_stock_archive(name, store)
        self.names = set(names)
        self.servers = {key: stack.enter_context(stock_server(config, store, workdir / key, STOCK_PORTS[key]))
                        for key, config in self.configs.items()} if names else {}
        # system -> its process group (each peer is started in its own session)
        self.groups = {key: server.process.pid for key, server in self.servers.items()}

    @contextmanager
    def paused(self, running: str = "") -> Iterator[None]:
        """While inside, every peer but ``running`` (any of ours: all of them) is stopped."""
        stopped = [group for key, group in self.groups.items() if key != running]
        for group in stopped:
            os.killpg(group, signal.SIGSTOP)
        try:
            yield
        finally:
            for group in stopped:
                os.killpg(group, signal.SIGCONT)

    def _alone(self, key: str, run: Callable[[int], LoadResult]) -> Callable[[int], LoadResult]:
        def run_alone(users: int) -> LoadResult:
            with self.paused(key):
                return run(users)
        return run_alone

    def systems(self, name: str, host: str, args, out: Path) -> dict:
        """system -> run(users) for this network (the stock models registered, LitServe started)."""
        run = lambda target, protocol, tag, token="": (  # noqa: E731
            lambda users: run_locust(target, name, protocol, users, args.duration, out / f"{name}_{tag}_u{users}",
                                     token=token))
        systems = {"ours": run(host, "rest", "rest"), "ours_form": run(host, "rest_form", "rest_form")}
        for key, server in self.servers.items():
            register_stock(server, name, self.configs[key])
            token = server.keys().inference
            _warm(f"{server.inference_url}/predictions/{name}", headers={"Authorization": f"Bearer {token}"},
                  content=PHOTO.read_bytes())
            systems[key] = run(server.inference_url, "torchserve", key, token)
        _warm(f"http://127.0.0.1:{LITSERVE_PORT}/predict", files={"image": PHOTO.read_bytes()})
        systems["litserve"] = run(f"http://127.0.0.1:{LITSERVE_PORT}", "litserve", "litserve")
        return {key: self._alone(key, system) for key, system in systems.items()}

    @contextmanager
    def serving(self, name: str, host: str, args, out: Path) -> Iterator[dict]:
        """While inside: every peer serves ``name`` (LitServe started, the stock models registered); the
        systems as ``systems`` gives them."""
        litserve = start_litserve(name, LITSERVE_PORT, self.workdir / f"litserve-{name}.log")
        self.groups["litserve"] = litserve.pid
        try:
            wait_http(f"http://127.0.0.1:{LITSERVE_PORT}/health", timeout=600)
            yield self.systems(name, host, args, out)
        finally:
            del self.groups["litserve"]
            os.killpg(litserve.pid, signal.SIGINT)
            litserve.wait(60)
            for server in self.servers.values():
                unregister_stock(server, name)

    def compare(self, name: str, host: str, args, out: Path) -> dict:
        with self.serving(name, host, args, out) as systems:
            result = compare(systems, args.rounds, tuple(args.steps))
        options = ArchiveOptions()
        ours = (f"{options.workers} workers x {max(1, (os.cpu_count() or 1) // options.workers)} thread(s), batching "
                f"{options.batch_size} / {options.max_batch_delay_ms} ms, runtime {chosen_runtime(name)}")
        result["described"] = {"ours": f"{ours}; raw photograph", "ours_form": f"{ours}; multipart form",
                               "litserve": "2 workers x 1 thread, batching 4 / 5 ms, eager; multipart form"} | {
            key: config.describe() for key, config in self.configs.items()}
        return result


def bench_ours(names: list[str], args, out: Path, workdir: Path, limits: dict) -> dict[str, dict]:
    store, options = workdir / "store", ArchiveOptions()
    min_users = options.workers * options.batch_size  # up to a full batch on each worker: see saturate
    served = sorted({*names, *overhead_models(names)})
    for name in served:
        build_archive(name, store, options)
    ts_dir = workdir / "torchserve"
    stack = start_stack(store, ts_dir, PORTS, served)
    host, results = f"http://127.0.0.1:{PORTS['rest']}", {}
    try:
        token = TorchServeKeys.read(ts_dir).inference
        with ExitStack() as peers_stack:
            peers = Peers([n for n in names if n in REFERENCE and stock_supported(n)], workdir, peers_stack)
            for name in tqdm(names, desc="our stack", unit="model"):
                load_through_gateway(host, name)  # before anything is timed
                if name in peers.names:
                    results[name] = _against_peers(name, (stack.pid, host, token), peers, args, out)
                    with peers.paused():
                        results[name]["limit_again"] = _limit_again(name, limits[name]["best"], args)
                else:
                    with peers.paused():
                        results[name] = _alone(name, host, args, out, min_users)
        results["overhead"] = [measure_overhead(name, host, token, args.overhead_requests)
                               for name in tqdm(overhead_models(names), desc="gateway overhead", unit="model")]
    finally:
        stack.send_signal(signal.SIGINT)
        stack.wait(120)
    return results


def _alone(name: str, host: str, args, out: Path, min_users: int) -> dict:
    best, steps = saturate(lambda u: run_locust(host, name, "rest", u, args.duration, out / f"{name}_rest_u{u}"),
                           args.concurrency, min_users=min_users)
    return {"ours": best.as_dict(), "steps": [s.as_dict() for s in steps]}


def _against_peers(name: str, ours: tuple[int, str, str], peers: Peers, args, out: Path) -> dict:
    """Our stack and its peers in rounds, then at our best step, every peer stopped, each with the CPU
    every process group spent per answer (loadtests/cpu.py): REST once more, straight at TorchServe,
    gRPC and v2."""
    stack_pid, host, token = ours
    comparison = peers.compare(name, host, args, out)
    users = comparison["systems"]["ours"]["best_users"]

    def run(target: str, protocol: str, tag: str, **options) -> dict:
        return accounted(stack_pid, lambda: run_locust(target, name, protocol, users, args.duration,
                                                       out / f"{name}_{tag}", **options))

    with peers.paused():
        return {"peers": comparison, "rest": run(host, "rest", f"rest_alone_u{users}"),
                "direct": run(f"http://127.0.0.1:{PORTS['ts_inference']}", "torchserve", f"direct_u{users}",
                              token=token),
                "grpc": run(host, "grpc", "grpc", grpc_target=f"127.0.0.1:{PORTS['grpc']}"),
                "v2": run(host, "v2", "v2")}


def _limit_again(name: str, best: dict, args) -> dict:
    """The limit's best configuration timed again, after our runs, our stack idle and every peer stopped:
    the sweep ran before the stack started, and this machine's speed drifts by more than the gaps measured."""
    found = limit(name, args.limit_seconds, args.limit_rounds, (best["batch"],), (best["runtime"],))
    again = next(c for c in found["configurations"]
                 if (c["runtime"], c["processes"]) == (best["runtime"], best["processes"]))
    return {"median": again["median"], "img_s": again["img_s"], "sweep_median": best["median"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="", help="comma-separated names (default: every seed model + refs)")
    parser.add_argument("--duration", type=float, default=20, help="seconds per locust run")
    parser.add_argument("--concurrency", type=int, default=0, help="fixed users (default: found by stepping)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of our stack and its peers")
    parser.add_argument("--steps", type=lambda text: [int(u) for u in text.split(",")], default=list(STEPS),
                        help="users of every system in the comparison with the peers")
    parser.add_argument("--limit-seconds", type=float, default=6, help="seconds per configuration of the limit")
    parser.add_argument("--limit-rounds", type=int, default=3, help="interleaved rounds of the limit")
    parser.add_argument("--limit-runtimes", default=",".join(RUNTIME_NAMES), help="the runtimes the limit tries")
    parser.add_argument("--limit-batches", type=lambda text: tuple(int(b) for b in text.split(",")), default=BATCHES,
                        help="the batch sizes the limit tries")
    parser.add_argument("--overhead-requests", type=int, default=400,
                        help="rounds (one request per path each) of the gateway overhead measurement")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-docs", action="store_true", help="do not regenerate docs/benchmarks.md")
    args = parser.parse_args(argv)
    names = [n for n in args.models.split(",") if n] or sorted(set(list_models(seed_only=True)) | set(REFERENCE))
    out = args.results / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True)
    started = time.time()
    runtimes = tuple(args.limit_runtimes.split(","))
    limits = {name: limit(name, args.limit_seconds, args.limit_rounds, args.limit_batches, runtimes)
              for name in tqdm(names, desc="limits", unit="model")}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        ours = bench_ours(names, args, out, Path(tmp), limits)
    fine = ours.pop("overhead")
    summary = {"machine": describe_machine(), "started": started, "seconds": time.time() - started,
               "duration_s": args.duration, "stepping": STEPPING, "rounds": args.rounds,
               "models": summarize(names, limits, ours, fine), "overhead": fine,
               "details": {"ours": ours, "limits": limits}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if not args.no_docs:
        write_docs(summary, out)
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
