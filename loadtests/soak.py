"""``make soak``: the stack under steady high load for a long time, watching for leaks.

Starts TorchServe and the gateway as ``make serve`` does (``runner.start_stack``), drives them with locust in a
closed loop (REST, gRPC and v2 predictions, and a share of bad requests that must each get their own error:
``soak_locustfile.py``), and samples the resident memory and open file descriptors of the gateway, TorchServe's
frontend and its workers every few seconds. Writes ``loadtests/results/soak-<timestamp>/`` (samples.csv,
summary.json and locust's CSVs) and the "Soak" section of docs/reliability.md.

    python -m loadtests.soak --duration 600 [--users 12] [--model resnet18]
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from zooserve.machine import describe_machine
from zooserve.store.build import DEFAULT_STORE

from .runner import ROOT, start_stack
from .soak_report import Sampler, summarize, write_docs

RESULTS = ROOT / "loadtests" / "results"
LOCUSTFILE = ROOT / "loadtests" / "soak_locustfile.py"
# the user classes of soak_locustfile.py (not imported here: importing locust patches the whole process for gevent)
USERS = ("SoakRest", "SoakGrpc", "SoakV2", "BadRequestUser")
PORT_NAMES = ("rest", "grpc", "ts_inference", "ts_management", "ts_metrics", "ts_grpc", "ts_grpc_management")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load")
    parser.add_argument("--users", type=int, default=12, help="closed-loop locust users (under the in-flight cap)")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between process samples")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds of load before drift is measured (default: a tenth of the run, at most 60)")
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help="model archives (built where missing)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the Soak section of docs/reliability.md")
    return parser


def run_locust(host: str, grpc_target: str, model: str, users: int, seconds: float, prefix: Path) -> None:
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *USERS, "--headless", "--only-summary",
               "-u", str(users), "-r", str(users), "-t", f"{max(1, round(seconds))}s", "--host", host,
               "--csv", str(prefix), "--stop-timeout", "30", "--loglevel", "WARNING",
               "--zoo-model", model, "--zoo-grpc-target", grpc_target]
    process = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if process.returncode not in (0, 1):  # 1: some requests failed, which the summary reports
        raise RuntimeError(f"locust failed ({process.returncode}): {process.stderr.decode()[-2000:]}")


def soak(args: argparse.Namespace, out: Path) -> dict:
    ports = {name: _free_port() for name in PORT_NAMES}
    host, grpc_target = f"http://127.0.0.1:{ports['rest']}", f"127.0.0.1:{ports['grpc']}"
    stack = start_stack(args.store, out / "torchserve", ports, [args.model])
    try:
        # the first request registers the model: before the clock, as a deployment warms up
        image = (ROOT / "tests" / "data" / "chelsea.jpg").read_bytes()
        httpx.post(f"{host}/predict/{args.model}", content=image, timeout=600).raise_for_status()
        with Sampler(stack.pid, args.interval, out / "samples.csv") as sampler:
            run_locust(host, grpc_target, args.model, args.users, args.duration, out / "locust")
        stats_text = httpx.get(f"{host}/metrics", timeout=30).text
    finally:
        stack.send_signal(signal.SIGINT)  # the gateway drains, then TorchServe stops
        stack.wait(120)
    warmup = args.warmup if args.warmup is not None else min(60.0, args.duration / 10)
    return summarize(out, sampler.samples, warmup, stats_text) | {
        "duration_s": args.duration, "users": args.users, "model": args.model, "warmup_s": warmup,
        "interval_s": args.interval, "machine": describe_machine(),
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results / f"soak-{stamp}"
    out.mkdir(parents=True)
    started = time.monotonic()
    summary = soak(args, out) | {"started": stamp}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if not args.no_docs:
        write_docs(summary, out.relative_to(ROOT) if out.is_relative_to(ROOT) else out)
    print(f"soak: {summary['requests']} requests in {args.duration:g} s, {summary['unexpected_failures']} "
          f"unexpected failures; results in {out} ({time.monotonic() - started:.0f} s in all)")
    return 0 if summary["unexpected_failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
