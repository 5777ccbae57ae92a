"""Running locust headless against a host and reading its figures; the processes the benchmark starts."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
USER_CLASSES = {"rest": "RestUser", "grpc": "GrpcUser", "v2": "V2User", "torchserve": "TorchServeUser",
                "rest_form": "RestFormUser", "litserve": "LitServeUser"}
STEP_GAIN = 1.05  # a step of users that grows throughput by less than this is flat
# the rule of ``saturate`` and ``run_locust``, in summary.json (report.STEPPING_RULES says it in words)
STEPPING = "two flat steps, at least workers x batch users, counted once all users run"


@dataclass
class LoadResult:
    users: int
    rps: float  # correct answers per second (failed requests do not count)
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    failures: int
    loadgen_cpu_share: float  # the load generator's CPU time over the machine's (cores x wall time)

    def as_dict(self) -> dict:
        return asdict(self)


def run_locust(host: str, model: str, protocol: str, users: int, seconds: float, csv_prefix: Path,
               token: str = "", grpc_target: str = "") -> LoadResult:
    """One closed-loop run: ``users`` clients each sending the next request when the last one answered.

    Every user starts within a tenth of a second, and the figures count from the moment they all run
    (``--reset-stats``): the start-up, with fewer users than asked, is not the load being measured. It
    had taken the first second (users started at ``users`` per second), a tenth of a 10 s step."""
    csv_prefix.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), USER_CLASSES[protocol], "--headless", "--only-summary",
        "-u", str(users), "-r", str(users * 10), "--reset-stats", "-t", f"{max(1, round(seconds))}s", "--host", host,
        "--csv", str(csv_prefix), "--stop-timeout", "10", "--loglevel", "WARNING",
        "--zoo-model", model,
    ]
    if token:
        command += ["--zoo-token", token]
    if grpc_target:
        command += ["--zoo-grpc-target", grpc_target]
    started = time.perf_counter()
    process = psutil.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cpu = 0.0
    while process.poll() is None:
        try:
            times = process.cpu_times()
            cpu = times.user + times.system
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    wall = time.perf_counter() - started
    if process.returncode not in (0, 1):  # locust exits 1 when some requests failed
        raise RuntimeError(f"locust failed ({process.returncode}): {process.stderr.read().decode()[-2000:]}")
    return _read_stats(csv_prefix, users, cpu / (wall * (os.cpu_count() or 1)))


def _read_stats(csv_prefix: Path, users: int, cpu_share: float) -> LoadResult:
    with open(f"{csv_prefix}_stats.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    if int(row["Request Count"]) == 0:
        raise RuntimeError(f"locust sent no request in {csv_prefix}: see its failures and exceptions CSVs")
    requests, failures = int(row["Request Count"]), int(row["Failure Count"])
    return LoadResult(
        # only correct answers count towards throughput
        users=users, rps=float(row["Requests/s"]) * (requests - failures) / requests,
        p50_ms=float(row["50%"]), p95_ms=float(row["95%"]),
        p99_ms=float(row["99%"]), requests=requests, failures=failures,
        loadgen_cpu_share=round(cpu_share, 4),
    )


def saturate(run, fixed_users: int | None = None, max_users: int = 16,
             min_users: int = 1) -> tuple[LoadResult, list[LoadResult]]:
    """Steps the closed-loop users 1, 2, 4, ... until two steps in a row add less than 5% to the best so far,
    but never stops below ``min_users``; the best run and all runs. Pass workers x batch size as
    ``min_users``: up to a full batch TorchServe hands the queued requests to one worker while the others
    idle, so 1, 2 and 4 users can all be flat on a network that 8 users serve twice as fast (xception,
    pnasnet5_large and pyramidnet200_a450 stopped at 1-4 users with ~50% of their limit that way)."""
    if fixed_users:
        result = run(fixed_users)
        return result, [result]
    steps, users, flat = [], 1, 0
    while users <= max_users:
        steps.append(run(users))
        if len(steps) > 1:
            flat = flat + 1 if steps[-1].rps < STEP_GAIN * max(s.rps for s in steps[:-1]) else 0
            if flat >= 2 and users >= min_users:
                break
        users *= 2
    return max(steps, key=lambda s: s.rps), steps


def wait_http(url: str, timeout: float = 300, expect: int = 200, headers: dict | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=5).status_code == expect:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer {expect} within {timeout:.0f} s")


def start_stack(store: Path, workdir: Path, ports: dict[str, int], models: list[str]) -> subprocess.Popen:
    """Our stack as `make serve` runs it (TorchServe + gateway), on the given ports."""
    env = os.environ | {
        "ZOO_REST_PORT": str(ports["rest"]), "ZOO_GRPC_PORT": str(ports["grpc"]),
        "ZOO_BACKENDS__LOCAL__INFERENCE_URL": f"http://127.0.0.1:{ports['ts_inference']}",
        "ZOO_BACKENDS__LOCAL__MANAGEMENT_URL": f"http://127.0.0.1:{ports['ts_management']}",
        "ZOO_BACKENDS__LOCAL__GRPC_ADDRESS": f"127.0.0.1:{ports['ts_grpc']}",
        "ZOO_BACKENDS__LOCAL__KEY_DIR": str(workdir),
    }
    command = [sys.executable, "-m", "zooserve.serve", "--store", str(store), "--models", *models,
               "--metrics-port", str(ports["ts_metrics"]), "--grpc-management-port", str(ports["ts_grpc_management"])]
    log = open(workdir.parent / "stack.log", "ab")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    wait_http(f"http://127.0.0.1:{ports['rest']}/readyz", timeout=300)
    return process
