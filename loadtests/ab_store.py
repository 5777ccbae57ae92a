"""The experiment record store at scale: how fast records are written, and how long a report and a guardrail
pass take once an experiment holds millions of them.

    python -m loadtests.ab_store --database sqlite --records 1000000
    python -m loadtests.ab_store --database postgresql --records 10000000

Records go through the store's own write path (RecordStore.write: INSERT ... RETURNING and the running
totals, one transaction per batch), in batches of ``--batch`` records (a flush's worth at the gateway's peak
rate), time-stamped as if they came at ``--rate`` requests per second; ``--labelled`` of them get feedback
through the store's feedback path. Then the report (GET /experiments/{name}/report: totals read, figures,
fixed-horizon and sequential statistics) and a guardrail pass (ExperimentRouter.evaluate) are timed
``--repeat`` times. PostgreSQL is a throwaway server (loadtests/postgres.py) unless ``--database-url`` names one.
The data lives in a temporary directory under ``--dir`` (removed after), never in the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import psutil

from zooserve.gateway.experiments.router import ExperimentRouter
from zooserve.gateway.experiments.store import Record, RecordStore

EXPERIMENT = "scale"
CONFIG = f"""
experiments:
  - name: {EXPERIMENT}
    control: a
    variants:
      - {{name: a, model: resnet50, weight: 50}}
      - {{name: b, model: mobilenet_v2, weight: 50}}
    guardrails: {{max_error_rate_increase: 0.05, max_p99_latency_ratio: 2.0, max_accuracy_drop: 0.05}}
"""
MODELS = {"a": "resnet50", "b": "mobilenet_v2"}


def records(count: int, rate: float, seed: int, start: float):
    """Plausible primary records: variants 50/50, 1% errors, log-normal latencies, top-1 in 10 classes."""
    rng = random.Random(seed)
    for i in range(count):
        variant = "a" if rng.random() < 0.5 else "b"
        failed = rng.random() < 0.01
        yield Record(f"r{i:09d}", "primary", start + i / rate, EXPERIMENT, variant, MODELS[variant],
                     503 if failed else 200, round(rng.lognormvariate(3.0 if variant == "a" else 2.6, 0.3), 3),
                     None if failed else rng.randrange(10), None, None)


def write(store: RecordStore, args: argparse.Namespace) -> dict[str, float]:
    """All records in batches, and feedback for a share of them; records/s and CPU per record."""
    rng = random.Random(args.seed + 1)
    batch: list[Record] = []
    labelled: list[tuple[str, int, float]] = []
    cpu, wall = time.process_time(), time.perf_counter()
    feedback_s = 0.0
    for record in records(args.records, args.rate, args.seed, time.time() - args.records / args.rate):
        batch.append(record)
        if record.top1_index is not None and rng.random() < args.labelled:
            correct = rng.random() < (0.76 if record.variant == "a" else 0.74)
            labelled.append((record.request_id, record.top1_index if correct else 10, record.created + 5))
        if len(batch) == args.batch:
            store.db.run(lambda tx: store.write(tx, batch))
            started = time.perf_counter()
            store.db.run(lambda tx: [store.write_feedback(tx, *label) for label in labelled])
            feedback_s += time.perf_counter() - started
            batch, labelled = [], []
    if batch:
        store.db.run(lambda tx: store.write(tx, batch))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"records_per_s": args.records / (wall - feedback_s), "seconds": wall,
            "cpu_us_per_record": cpu / args.records * 1e6, "feedback_s": feedback_s}


async def timings(router: ExperimentRouter, repeat: int) -> dict[str, list[float]]:
    report, guard = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        await router.report(EXPERIMENT)
        report.append(time.perf_counter() - started)
        started = time.perf_counter()
        await router.evaluate()
        guard.append(time.perf_counter() - started)
    return {"report_s": report, "guardrail_pass_s": guard}


def single_feedback(store: RecordStore, count: int) -> float:
    """Seconds per feedback written on its own (as POST /feedback does), on records already stored."""
    rows = store.db.execute("SELECT r.request_id, r.top1_index FROM experiment_records r LEFT JOIN "
                            "experiment_feedback f ON f.request_id = r.request_id WHERE f.request_id IS NULL "
                            "AND r.status = 200 LIMIT ?", (count,))
    started = time.perf_counter()
    for request_id, top1 in rows:
        store.db.run(lambda tx: store.write_feedback(tx, request_id, top1, time.time()))
    return (time.perf_counter() - started) / max(1, len(rows))


def _cpu() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.ab_store", description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--database-url", default=None, help="an existing PostgreSQL (default: a throwaway one)")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=200, help="records per transaction")
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s the time stamps are spread at")
    parser.add_argument("--labelled", type=float, default=0.1, help="share of records given feedback")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zoo-ab-store-", dir=args.dir)))
        url = args.database_url
        if args.database == "postgresql" and url is None:
            from loadtests.postgres import running_postgres

            url = stack.enter_context(running_postgres())
        store = RecordStore(directory / "records.sqlite3", url)
        config = directory / "experiments.yaml"
        config.write_text(CONFIG)
        router = ExperimentRouter(config, MODELS.values(), store)
        written = write(store, args)
        per_feedback = single_feedback(store, 200)
        timed = asyncio.run(timings(router, args.repeat))
        store.db.close()
    print(f"machine: {_cpu()}, {psutil.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.1f} GiB; {args.database}, {args.records} records in batches "
          f"of {args.batch}, {args.labelled:.0%} labelled")
    print(f"writing: {written['records_per_s']:.0f} records/s ({written['cpu_us_per_record']:.0f} us of CPU per "
          f"record in the writing process, feedback included; {written['seconds']:.0f} s in all)")
    print(f"one feedback on its own: {per_feedback * 1000:.2f} ms")
    for name, values in timed.items():
        print(f"{name}: median {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms "
              f"over {len(values)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
