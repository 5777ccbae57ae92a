"""The fixed-horizon statistics of the A/B report: confidence intervals and two-sided tests.

Proportions (accuracy, error rate) use the Wilson score interval for one variant and the two-proportion
z-test (pooled variance) for a difference, with a Wald interval for the difference; latency uses the
Mann-Whitney U test, since latencies are skewed and a t-test on them misleads. The tests in
tests/experiments/ check every figure against statsmodels and scipy on the same data. These figures are
valid read once; the verdict and the guardrails, read again and again, use sequential.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from .latency import Histogram, mann_whitney_p

_norm = scipy_stats.norm


def z_value(confidence: float) -> float:
    return float(_norm.ppf(1 - (1 - confidence) / 2))


def wilson_interval(successes, trials, confidence: float = 0.95):
    """Wilson score interval for a proportion; (0, 1) when there are no trials. Element-wise on arrays."""
    s, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    z = z_value(confidence)
    safe = np.maximum(n, 1)
    p = s / safe
    denominator = 1 + z * z / safe
    centre = (p + z * z / (2 * safe)) / denominator
    half = z * np.sqrt(p * (1 - p) / safe + z * z / (4 * safe * safe)) / denominator
    low = np.where(n > 0, np.maximum(0.0, centre - half), 0.0)
    high = np.where(n > 0, np.minimum(1.0, centre + half), 1.0)
    return (float(low), float(high)) if low.ndim == 0 else (low, high)


@dataclass(frozen=True)
class Comparison:
    """Treatment minus control, with a confidence interval and a two-sided p-value."""

    difference: float
    low: float | None  # None: too little data for an interval
    high: float | None
    p_value: float


def two_proportions(success_t: int, n_t: int, success_c: int, n_c: int, confidence: float = 0.95) -> Comparison:
    """Difference of two proportions: pooled z-test p-value, unpooled (Wald) confidence interval."""
    if n_t == 0 or n_c == 0:
        return Comparison(0.0, -1.0, 1.0, 1.0)
    p_t, p_c = success_t / n_t, success_c / n_c
    pooled = (success_t + success_c) / (n_t + n_c)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    p_value = 1.0 if se_pooled == 0 else float(2 * _norm.sf(abs(p_t - p_c) / se_pooled))
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    half = z_value(confidence) * se
    return Comparison(p_t - p_c, p_t - p_c - half, p_t - p_c + half, p_value)


def latency_comparison(treatment: Histogram, control: Histogram, confidence: float = 0.95) -> Comparison:
    """Difference of medians, a Mann-Whitney U two-sided p-value, and a normal-approximation interval
    for the difference of medians (from the order statistics' standard errors); from the latency bins."""
    if treatment.n < 2 or control.n < 2:
        return Comparison(0.0, None, None, 1.0)
    p_value = mann_whitney_p(treatment, control)
    difference = treatment.percentile(50) - control.percentile(50)
    half = z_value(confidence) * math.hypot(treatment.median_se(), control.median_se())
    return Comparison(difference, difference - half, difference + half, p_value)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) of raw values, numpy's (linear interpolation); None for no data. The
    project's one percentile: the benchmarks and the reliability tests use it (the reports read theirs from
    the latency bins, latency.py)."""
    return float(np.percentile(values, q)) if len(values) else None
