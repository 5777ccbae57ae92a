"""Where the machine's CPU goes while our stack serves: each process group's CPU time per answer.

The benchmark says how far the served throughput is from the limit (the model in a tight loop, no
server); this says which part of the stack takes the difference. Our stack runs as `make serve` runs it
(loadtests/runner.py ``start_stack``), optionally with the peers of the benchmark started beside it and
left idle (as they are while ours is measured in ``make bench``); then every path is loaded by locust
at the same users, the paths interleaved in rounds (an order shuffled every round):

- ``rest``: the gateway's ``POST /predict/<model>`` (raw photograph);
- ``grpc`` and ``v2``: the gateway's gRPC and Open Inference Protocol REST bindings;
- ``direct``: straight at our TorchServe's ``/predictions/<model>``, no gateway.

Around each run the CPU time of every process on the machine is read and summed per group (loadtests/cpu.py:
the gateway, TorchServe's frontend and workers, the load generator, the idle peers, anything else, and
the machine's busy and idle time); divided by the correct answers, the CPU each group spends per answer.

    .venv/bin/python -m loadtests.cpu_split [--models resnet18,resnet50,mobilenet_v2] [--users 8]
        [--seconds 20] [--rounds 3] [--idle-peers]

Writes loadtests/results/cpu-split-<time>/results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import tempfile
import time
from contextlib import ExitStack, nullcontext
from datetime import UTC, datetime
from pathlib import Path

from zooserve.machine import describe_machine
from zooserve.store.build import ArchiveOptions, build_archive
from zooserve.store.select import interleaved
from zooserve.torchserve import TorchServeKeys

from .bench import PORTS, RESULTS, Peers, load_through_gateway
from .cpu import GROUPS, accounted
from .runner import run_locust, start_stack

PATHS = ("rest", "grpc", "v2", "direct")


def one_run(stack_pid: int, name: str, path: str, users: int, seconds: float, out: Path, token: str) -> dict:
    host = f"http://127.0.0.1:{PORTS['rest']}"
    targets = {"rest": (host, "rest", {}), "v2": (host, "v2", {}),
               "grpc": (host, "grpc", {"grpc_target": f"127.0.0.1:{PORTS['grpc']}"}),
               "direct": (f"http://127.0.0.1:{PORTS['ts_inference']}", "torchserve", {"token": token})}
    target, protocol, extra = targets[path]
    return accounted(stack_pid, lambda: run_locust(target, name, protocol, users, seconds,
                                                   out / f"{name}_{path}_{time.time_ns()}", **extra))


def measure(names: list[str], users: int, seconds: float, rounds: int, idle_peers: bool, out: Path) -> dict:
    results = {}
    with tempfile.TemporaryDirectory(prefix="zoo-cpu-split-") as tmp, ExitStack() as stack:
        store = Path(tmp) / "store"
        for name in names:
            build_archive(name, store, ArchiveOptions())
        server = start_stack(store, Path(tmp) / "torchserve", PORTS, names)
        stack.callback(lambda: (server.send_signal(signal.SIGINT), server.wait(120)))
        token = TorchServeKeys.read(Path(tmp) / "torchserve").inference
        peers = Peers(names, Path(tmp), stack) if idle_peers else None
        for name in names:
            load_through_gateway(f"http://127.0.0.1:{PORTS['rest']}", name)
            calls = {path: (lambda p=path: one_run(server.pid, name, p, users, seconds, out, token)) for path in PATHS}
            with peers.serving(name, "", argparse.Namespace(duration=seconds), out) if peers else nullcontext():
                runs = interleaved(calls, rounds, random.Random(0))
            results[name] = {path: {"runs": r, "median_rps": statistics.median(x["rps"] for x in r),
                                    "median_cpu_ms_per_answer": {g: round(statistics.median(x["cpu_ms_per_answer"][g]
                                                                                            for x in r), 3)
                                                                 for g in r[0]["cpu_ms_per_answer"]}}
                             for path, r in runs.items()}
    return results


def table(results: dict) -> str:
    columns = GROUPS
    lines = ["| model | path | req/s (median) | " + " | ".join(f"{g} ms" for g in columns) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in columns) + " |"]
    for name, paths in results.items():
        for path, figures in paths.items():
            cpu = figures["median_cpu_ms_per_answer"]
            lines.append(f"| `{name}` | {path} | {figures['median_rps']:.1f} | "
                         + " | ".join(f"{cpu[g]:.2f}" for g in columns) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.cpu_split", description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="resnet18,resnet50,mobilenet_v2")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-peers", action="store_true", help="stock TorchServe and LitServe started beside, idle")
    args = parser.parse_args(argv)
    out = RESULTS / f"cpu-split-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    out.mkdir(parents=True)
    results = measure(args.models.split(","), args.users, args.seconds, args.rounds, args.idle_peers, out)
    (out / "results.json").write_text(json.dumps({"machine": describe_machine(), "users": args.users,
                                                  "seconds": args.seconds, "rounds": args.rounds,
                                                  "idle_peers": args.idle_peers, "models": results}, indent=2))
    print(table(results))
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
