"""Our stack beside its peers, under the same load, in interleaved rounds; the ratios with 95% intervals.

The systems (each serving the same network with the same fixed-seed weights, the same photograph):
- ``ours``: the gateway's REST API with the raw photograph (as `make serve` runs it); ``ours_form``: the
  same with the photograph as a multipart form (the LitServe peer's request);
- ``stock_default``: stock TorchServe at its defaults (built-in image_classifier handler, one worker per
  core, no batching, torch's default threads);
- ``stock_best_1w`` and ``stock_best_2w``: stock TorchServe at its best configuration tried: 1 or 2
  workers with OMP_NUM_THREADS = cores / workers, its batching on (batch size 4, max delay 5 ms);
- ``litserve``: LitServe (loadtests/litserve_peer.py says what it runs).

Every system runs every step of ``STEPS`` users (no early stop) for the same duration; a round runs
each system once, in an order shuffled every round (``zooserve.store.select.interleaved``). A system's
figure is its best step by median over the rounds; the ratio of ours to a peer is taken per round at
those steps (paired by round) and summarized by the geometric mean, with the 95% interval of Student's
t on the log ratios.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable

from scipy import stats

from zooserve.store.select import interleaved

from .runner import LoadResult

STEPS = (1, 2, 4, 8, 16)
# which of our two ways of sending the photograph each peer is compared with
BASELINE = {"stock_default": "ours", "stock_best_1w": "ours", "stock_best_2w": "ours", "litserve": "ours_form"}


def ratio_interval(ours: list[float], peer: list[float], confidence: float = 0.95) -> dict:
    """Ours over the peer, paired by round: the geometric mean of the per-round ratios and its interval
    (Student's t on the log ratios; None with a single round)."""
    if not all(ours) or not all(peer):  # a round where one side answered nothing correctly has no ratio
        return {"ratio": None, "ci95": None, "rounds": len(ours), "note": "a round with no correct answer"}
    logs = [math.log(o / p) for o, p in zip(ours, peer, strict=True)]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return {"ratio": round(math.exp(mean), 3), "ci95": None, "rounds": len(logs)}
    half_width = stats.t.ppf((1 + confidence) / 2, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return {"ratio": round(math.exp(mean), 3), "ci95": [round(math.exp(mean - half_width), 3),
                                                        round(math.exp(mean + half_width), 3)], "rounds": len(logs)}


def summarize_system(rounds: list[list[LoadResult]]) -> dict:
    """Per step: the throughput of every round, its median and range, the median latencies and the
    failures; the best step by median throughput."""
    by_step: dict[int, list[LoadResult]] = {}
    for round_results in rounds:
        for result in round_results:
            by_step.setdefault(result.users, []).append(result)
    steps = {users: {"rps": [round(r.rps, 2) for r in results],
                     "median_rps": round(statistics.median(r.rps for r in results), 2),
                     "min_rps": round(min(r.rps for r in results), 2), "max_rps": round(max(r.rps for r in results), 2),
                     "p50_ms": statistics.median(r.p50_ms for r in results),
                     "p95_ms": statistics.median(r.p95_ms for r in results),
                     "p99_ms": statistics.median(r.p99_ms for r in results),
                     "failures": sum(r.failures for r in results),
                     "loadgen_cpu_share": statistics.median(r.loadgen_cpu_share for r in results)}
             for users, results in by_step.items()}
    best = max(steps, key=lambda users: steps[users]["median_rps"])
    return {"steps": steps, "best_users": best, "best": steps[best]}


def compare(systems: dict[str, Callable[[int], LoadResult]], rounds: int, steps: tuple[int, ...] = STEPS,
            seed: int = 0) -> dict:
    """Runs every system through every step in interleaved rounds; each system's summary and each peer's
    ratio (ours over it) at the systems' best steps."""
    calls = {name: (lambda run=run: [run(users) for users in steps]) for name, run in systems.items()}
    summaries = {name: summarize_system(per_round)
                 for name, per_round in interleaved(calls, rounds, random.Random(seed)).items()}
    ratios = {}
    for peer, ours in BASELINE.items():
        if peer in summaries and ours in summaries:
            ratios[peer] = ratio_interval(summaries[ours]["best"]["rps"], summaries[peer]["best"]["rps"])
            ratios[peer]["against"] = ours
    return {"systems": summaries, "ratios": ratios, "rounds": rounds, "steps": list(steps)}
