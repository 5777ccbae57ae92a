"""The statistics of the A/B report: confidence intervals, two-sided tests, sample sizes.

Proportions (accuracy, error rate) use the Wilson score interval for one variant and the two-proportion
z-test (pooled variance) for a difference, with a Wald interval for the difference; latency uses the
Mann-Whitney U test, since latencies are skewed and a t-test on them misleads. The tests in
tests/experiments/ check every figure against statsmodels and scipy on the same data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

_norm = scipy_stats.norm


def z_value(confidence: float) -> float:
    return float(_norm.ppf(1 - (1 - confidence) / 2))


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) when there are no trials."""
    if trials == 0:
        return 0.0, 1.0
    z = z_value(confidence)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


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


def latency_comparison(treatment: list[float], control: list[float], confidence: float = 0.95) -> Comparison:
    """Difference of medians, a Mann-Whitney U two-sided p-value, and a normal-approximation interval
    for the difference of medians (from the order statistics' standard errors)."""
    if len(treatment) < 2 or len(control) < 2:
        return Comparison(0.0, None, None, 1.0)
    p_value = float(scipy_stats.mannwhitneyu(treatment, control, alternative="two-sided").pvalue)
    med_t, med_c = _median(treatment), _median(control)
    half = z_value(confidence) * math.hypot(_median_se(treatment), _median_se(control))
    return Comparison(med_t - med_c, med_t - med_c - half, med_t - med_c + half, p_value)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _median_se(values: list[float]) -> float:
    """Standard error of the median from the distribution-free interval of ranks n/2 +- sqrt(n)/2."""
    ordered = sorted(values)
    n = len(ordered)
    low = max(0, int(math.floor(n / 2 - math.sqrt(n) / 2)))
    high = min(n - 1, int(math.ceil(n / 2 + math.sqrt(n) / 2)))
    return (ordered[high] - ordered[low]) / 2


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), numpy's (linear interpolation); None for no data. The project's one
    percentile: the experiment reports, the benchmarks and the reliability tests use it alike."""
    return float(np.percentile(values, q)) if len(values) else None


def samples_needed(p_control: float, p_treatment: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Per-variant sample size to detect p_treatment vs p_control with a two-sided test (normal approx.)."""
    effect = abs(p_treatment - p_control)
    if effect == 0:
        return None
    z_alpha, z_beta = z_value(1 - alpha), float(_norm.ppf(power))
    mean = (p_control + p_treatment) / 2
    numerator = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(
        p_control * (1 - p_control) + p_treatment * (1 - p_treatment)
    )
    return math.ceil((numerator / effect) ** 2)
