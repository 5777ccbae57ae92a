"""Running totals of an experiment, kept as records arrive: what a batch adds, and the totals read back.

A report or a guardrail pass reads a few rows per variant and time bucket, whatever the number of
requests: the database sums them (``GROUP BY``), and counts from several gateways simply add up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .database import Transaction
from .latency import Histogram, bin_of
from .record import Record

COUNTS = ("requests", "errors", "labelled", "correct", "compared", "agreed")
KEY = ("experiment", "variant", "kind", "model", "bucket")
ADD_TOTALS = (
    f"INSERT INTO experiment_totals ({', '.join(KEY + COUNTS)}) VALUES ({', '.join('?' * len(KEY + COUNTS))}) "
    f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
    + ", ".join(f"{c} = experiment_totals.{c} + excluded.{c}" for c in COUNTS)
)
ADD_LATENCY = (
    "INSERT INTO experiment_latency (experiment, variant, bin, count) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (experiment, variant, bin) DO UPDATE SET count = experiment_latency.count + excluded.count"
)
PRIMARY_SERIES = (
    "SELECT variant, bucket, SUM(requests), SUM(errors), SUM(labelled), SUM(correct) FROM experiment_totals "
    "WHERE experiment = ? AND kind = 'primary' GROUP BY variant, bucket ORDER BY bucket"
)
AGREEMENT = (
    "SELECT variant, model, SUM(compared), SUM(agreed) FROM experiment_totals "
    "WHERE experiment = ? AND kind = 'shadow' GROUP BY variant, model"
)
LATENCY = "SELECT variant, bin, count FROM experiment_latency WHERE experiment = ?"


def bucket_of(created: float, bucket_s: int) -> int:
    return int(created // bucket_s * bucket_s)


def additions(records: Iterable[Record], bucket_s: int) -> tuple[list[tuple], list[tuple]]:
    """What ``records`` add to experiment_totals and experiment_latency, in key order (so that concurrent
    writers take the rows' locks in the same order and never deadlock)."""
    totals: dict[tuple, list[int]] = {}
    latency: Counter[tuple] = Counter()
    for r in records:
        counts = totals.setdefault((r.experiment, r.variant, r.kind, r.model, bucket_of(r.created, bucket_s)),
                                   [0] * len(COUNTS))
        counts[0] += 1
        counts[1] += r.status != 200
        if r.agrees is not None:
            counts[4] += 1
            counts[5] += bool(r.agrees)
        if r.kind == "primary" and r.status == 200:
            latency[r.experiment, r.variant, bin_of(r.latency_ms)] += 1
    return (sorted(key + tuple(counts) for key, counts in totals.items()),
            sorted(key + (n,) for key, n in latency.items()))


def label_additions(labels: Iterable[tuple], bucket_s: int) -> list[tuple]:
    """What labels add to experiment_totals, summed by key: (experiment, variant, model, top-1, label, time)."""
    counts: Counter[tuple] = Counter()
    for experiment, variant, model, top1_index, label_index, created in labels:
        key = (experiment, variant, "primary", model, bucket_of(created, bucket_s))
        counts[key + ("labelled",)] += 1
        counts[key + ("correct",)] += label_index == top1_index
    keys = sorted({key[:-1] for key in counts})
    return [key + (0, 0, counts[key + ("labelled",)], counts[key + ("correct",)], 0, 0) for key in keys]


def add(tx: Transaction, totals: list[tuple], latency: list[tuple]) -> None:
    tx.many(ADD_TOTALS, totals)
    tx.many(ADD_LATENCY, latency)


@dataclass(frozen=True)
class ExperimentTotals:
    """An experiment's totals: per variant, cumulative counts at the end of each time bucket (``buckets``,
    ascending, shared by all variants), the latency histogram, and the shadows' top-1 agreement."""

    buckets: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cumulative: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    latency: dict[str, Histogram] = field(default_factory=dict)
    agreement: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # (variant, shadow model)

    def series(self, variant: str, count: str) -> np.ndarray:
        return self.cumulative.get(variant, {}).get(count, np.zeros(len(self.buckets), dtype=np.int64))

    def total(self, variant: str, count: str) -> int:
        series = self.series(variant, count)
        return int(series[-1]) if len(series) else 0

    def histogram(self, variant: str) -> Histogram:
        return self.latency.get(variant) or Histogram.of([])


def read(tx: Transaction, experiment: str) -> ExperimentTotals:
    rows = tx.execute(PRIMARY_SERIES, (experiment,))
    buckets = np.array(sorted({r[1] for r in rows}), dtype=np.int64)
    per_bucket: dict[str, np.ndarray] = {}
    for variant, bucket, *counts in rows:
        table = per_bucket.setdefault(variant, np.zeros((len(buckets), 4), dtype=np.int64))
        table[np.searchsorted(buckets, bucket)] = counts
    cumulative = {variant: dict(zip(COUNTS[:4], table.cumsum(axis=0).T)) for variant, table in per_bucket.items()}
    histograms: dict[str, list[tuple[int, int]]] = {}
    for variant, bin_, count in tx.execute(LATENCY, (experiment,)):
        histograms.setdefault(variant, []).append((bin_, count))
    agreement = {(variant, model): (int(compared), int(agreed))
                 for variant, model, compared, agreed in tx.execute(AGREEMENT, (experiment,))}
    return ExperimentTotals(buckets, cumulative, {v: Histogram.of(p) for v, p in histograms.items()}, agreement)
