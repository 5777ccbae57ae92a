"""Synthetic experiment records with known answers, and their totals as a real record store keeps them."""

from __future__ import annotations

import random
from pathlib import Path

from zooserve.gateway.experiments import totals
from zooserve.gateway.experiments.store import Record, RecordStore

T0 = 1_800_000_000.0  # the records' first time stamp: one record a second from there


def rows_for(variant: str, model: str, n: int, accuracy: float, error_rate: float, latency_ms: float, seed: int):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        failed = rng.random() < error_rate
        correct = rng.random() < accuracy
        rows.append({
            "request_id": f"{variant}{i}", "kind": "primary", "variant": variant, "model": model,
            "status": 503 if failed else 200, "latency_ms": rng.lognormvariate(0, 0.2) * latency_ms,
            "top1_index": 1 if correct else 2, "label_index": None if failed else 1, "agrees": None,
        })
    return rows


def shadow_rows(primaries, model, agree_rate, seed):
    rng = random.Random(seed)
    return [{**r, "kind": "shadow", "model": model, "agrees": rng.random() < agree_rate} for r in primaries]


def stored_totals(rows: list[dict], directory: Path, database_url: str | None = None,
                  experiment: str = "exp", bucket_s: int = 60) -> totals.ExperimentTotals:
    """``rows`` written through a RecordStore's own write path (the i-th at T0 + i seconds, its label 30 s
    later), then the totals read back."""
    store = RecordStore(directory / "records.sqlite3", database_url, bucket_s=bucket_s)
    records = [Record(r["request_id"], r["kind"], T0 + i, experiment, r["variant"], r["model"], r["status"],
                      r["latency_ms"], r["top1_index"], None, None, r["agrees"]) for i, r in enumerate(rows)]
    labels = [(r["request_id"], r["label_index"], T0 + i + 30) for i, r in enumerate(rows)
              if r["kind"] == "primary" and r["label_index"] is not None]

    def write(tx) -> None:
        store.write(tx, records)
        for request_id, label, when in labels:
            store.write_feedback(tx, request_id, label, when)

    store.db.run(write)
    try:
        return store.db.run(lambda tx: totals.read(tx, experiment))
    finally:
        store.db.close()
