"""Which variant serves a request: a pure function of the experiment, its current weights and a key."""

from __future__ import annotations

import hashlib
import random

from .config import Experiment


def unit_interval(experiment: str, key: str) -> float:
    """A uniform number in [0, 1) fixed by (experiment, key): the same user always lands in the same place."""
    digest = hashlib.sha256(f"{experiment}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pick(weights: dict[str, float], point: float) -> str:
    """The variant whose slice of the cumulative weights holds ``point``; zero-weight variants never win."""
    total = sum(w for w in weights.values() if w > 0)
    if total <= 0:
        raise ValueError("no variant has traffic")
    cumulative = 0.0
    live = [(name, w) for name, w in weights.items() if w > 0]
    for name, weight in live:
        cumulative += weight / total
        if point < cumulative:
            return name
    return live[-1][0]  # point rounding at the very top of the interval


def assign(experiment: Experiment, weights: dict[str, float], key: str | None, rng: random.Random) -> str:
    """Sticky experiments hash the request key (a missing key falls back to random); others draw at random."""
    if experiment.assignment.mode == "sticky" and key:
        return pick(weights, unit_interval(experiment.name, key))
    return pick(weights, rng.random())
