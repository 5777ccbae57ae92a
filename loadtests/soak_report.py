"""The soak's measurements: process samples while it runs, its summary, and the Soak section of the docs.

Drift is measured after the warm-up (the allocator's arenas, connection pools and caches fill in the first
minutes of any process): the median of the last fifth of the samples minus the median of the first fifth,
and the least-squares slope over all of them, per process. A leak shows as both growing with the duration.
"""

from __future__ import annotations

import csv
import re
import statistics
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import psutil
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "reliability.md"
START, END = "<!-- soak:start -->", "<!-- soak:end -->"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    elapsed_s: float
    role: str  # gateway, frontend (TorchServe's Java process) or worker (a TorchServe Python worker)
    pid: int
    rss_mib: float
    fds: int
    threads: int


def _role(process: psutil.Process) -> str | None:
    if process.name() == "java":
        return "frontend"
    if any("model_service_worker" in part for part in process.cmdline()):
        return "worker"
    return None  # TorchServe's launcher waits on the frontend: nothing to watch


class Sampler:
    """Samples the gateway (the ``zooserve.serve`` process) and TorchServe's processes every ``interval`` s."""

    def __init__(self, pid: int, interval: float, path: Path):
        self.root, self.interval, self.path = psutil.Process(pid), interval, path
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def _sample(self) -> None:
        elapsed = round(time.monotonic() - self._started, 2)
        processes = [("gateway", self.root)]
        for child in self.root.children(recursive=True):
            try:
                role = _role(child)
            except psutil.Error:  # exited meanwhile
                continue
            if role:
                processes.append((role, child))
        for role, process in processes:
            try:
                with process.oneshot():
                    self.samples.append(Sample(elapsed, role, process.pid, round(process.memory_info().rss / MiB, 2),
                                               process.num_fds(), process.num_threads()))
            except psutil.Error:
                continue

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Sampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(Sample.__dataclass_fields__))
            writer.writeheader()
            writer.writerows(asdict(s) for s in self.samples)


def drift(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(end minus start, slope per minute) of (seconds, value) points: medians of the first and last fifth."""
    values = [v for _, v in points]
    window = max(1, len(values) // 5)
    change = statistics.median(values[-window:]) - statistics.median(values[:window])
    times = [t for t, _ in points]
    slope = float(np.polyfit(times, values, 1)[0]) * 60 if len(set(times)) >= 3 else 0.0
    return round(change, 2), round(slope, 3)


def process_drift(samples: list[Sample], warmup: float) -> list[dict]:
    by_process: dict[tuple[str, int], list[Sample]] = {}
    for sample in samples:
        if sample.elapsed_s >= warmup:
            by_process.setdefault((sample.role, sample.pid), []).append(sample)
    rows = []
    for (role, pid), series in sorted(by_process.items()):
        rss_change, rss_slope = drift([(s.elapsed_s, s.rss_mib) for s in series])
        fd_change, _ = drift([(s.elapsed_s, s.fds) for s in series])
        rows.append({"role": role, "pid": pid, "samples": len(series), "rss_start_mib": series[0].rss_mib,
                     "rss_end_mib": series[-1].rss_mib, "rss_max_mib": max(s.rss_mib for s in series),
                     "rss_drift_mib": rss_change, "rss_slope_mib_per_min": rss_slope,
                     "fds_start": series[0].fds, "fds_end": series[-1].fds, "fd_drift": fd_change,
                     "threads_end": series[-1].threads})
    return rows


def _locust_rows(prefix: Path) -> list[dict]:
    with open(f"{prefix}_stats.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _failures(prefix: Path) -> dict[str, int]:
    with open(f"{prefix}_failures.csv", newline="") as handle:
        return {f"{row['Name']}: {row['Error']}": int(row["Occurrences"]) for row in csv.DictReader(handle)}


def _latency(row: dict) -> dict:
    return {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
            "rps": round(float(row["Requests/s"]), 2), "p50_ms": float(row["50%"]), "p95_ms": float(row["95%"]),
            "p99_ms": float(row["99%"])}


def gateway_statuses(metrics_text: str) -> dict[str, int]:
    """zoo_requests_total by status code, from the gateway's own /metrics."""
    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "zoo_requests_total":
                code = sample.labels["code"]
                counts[code] = counts.get(code, 0) + int(sample.value)
    return dict(sorted(counts.items()))


def summarize(out: Path, samples: list[Sample], warmup: float, metrics_text: str) -> dict:
    rows = _locust_rows(out / "locust")
    total = next(r for r in rows if r["Name"] == "Aggregated")
    kinds = {r["Name"]: _latency(r) for r in rows if r["Name"] != "Aggregated"}
    return {
        "requests": int(total["Request Count"]), "rps": round(float(total["Requests/s"]), 2),
        "unexpected_failures": int(total["Failure Count"]), "failures_by_kind": _failures(out / "locust"),
        "latency_ms": _latency(total), "by_kind": kinds, "gateway_statuses": gateway_statuses(metrics_text),
        "processes": process_drift(samples, warmup),
    }


def _section(summary: dict, results: Path) -> str:
    latency, machine, started = summary["latency_ms"], summary["machine"], summary["started"]
    when = f"{started[:4]}-{started[4:6]}-{started[6:8]} {started[9:11]}:{started[11:13]} UTC"
    lines = [
        f"Last run: `python -m loadtests.soak --duration {summary['duration_s']:g}` (what `make soak` runs) at "
        f"{when} ({machine['cpu']}, "
        f"{machine['cores']} cores, {machine['gpu'] or 'no GPU'}), {summary['users']} closed-loop locust users on "
        f"`{summary['model']}`, "
        f"processes sampled every {summary['interval_s']:g} s, drift measured after {summary['warmup_s']:g} s of "
        f"warm-up. Results: `{results}`.", "",
        f"**{summary['requests']} requests ({summary['rps']} per second), {summary['unexpected_failures']} "
        f"unexpected failures**; all requests p50 {latency['p50_ms']:g} ms, p95 {latency['p95_ms']:g} ms, p99 "
        f"{latency['p99_ms']:g} ms. The gateway counted, by status: "
        + ", ".join(f"{code}: {count}" for code, count in summary["gateway_statuses"].items()) + ".", "",
        "| request | count | failures | per second | p50 ms | p95 ms | p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {name} | {k['requests']} | {k['failures']} | {k['rps']} | {k['p50_ms']:g} | {k['p95_ms']:g} | "
              f"{k['p99_ms']:g} |" for name, k in summary["by_kind"].items()]
    if summary["failures_by_kind"]:
        lines += ["", "Unexpected answers: " + "; ".join(f"{k} ({n})" for k, n in summary["failures_by_kind"].items())]
    lines += ["", "| process | pid | RSS after warm-up (MiB) | RSS at the end | max | drift (MiB) | slope (MiB/min) | "
              "open fds after warm-up | at the end |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {p['role']} | {p['pid']} | {p['rss_start_mib']:g} | {p['rss_end_mib']:g} | {p['rss_max_mib']:g} | "
              f"{p['rss_drift_mib']:+g} | {p['rss_slope_mib_per_min']:+g} | {p['fds_start']} | {p['fds_end']} |"
              for p in summary["processes"]]
    return "\n".join(lines)


def write_docs(summary: dict, results: Path, path: Path = DOCS) -> None:
    """Replaces the generated part of the Soak section (between its markers), or appends the section."""
    block = f"{START}\n{_section(summary, results)}\n{END}"
    text = path.read_text() if path.exists() else "# Reliability\n"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Soak\n\n" + block + "\n"
    path.write_text(text)
