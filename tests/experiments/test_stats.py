"""The report's statistics against statsmodels and scipy on the same data."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportions_ztest

from zooserve.gateway.experiments.latency import (
    RELATIVE_ACCURACY,
    SMALLEST_MS,
    Histogram,
    bin_of,
    mann_whitney_p,
    value_of,
)
from zooserve.gateway.experiments.stats import latency_comparison, two_proportions, wilson_interval


@pytest.mark.parametrize("successes, trials", [(0, 10), (3, 10), (50, 100), (97, 100), (812, 1000), (10, 10)])
@pytest.mark.parametrize("confidence", [0.90, 0.95, 0.99])
def test_wilson_interval_matches_statsmodels(successes, trials, confidence):
    expected = proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")
    assert wilson_interval(successes, trials, confidence) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("counts", [(45, 100, 55, 100), (800, 1000, 760, 1000), (5, 40, 9, 60), (120, 130, 100, 125)])
def test_two_proportion_test_matches_statsmodels(counts):
    s_t, n_t, s_c, n_c = counts
    result = two_proportions(s_t, n_t, s_c, n_c)
    _, p_value = proportions_ztest([s_t, s_c], [n_t, n_c])
    low, high = confint_proportions_2indep(s_t, n_t, s_c, n_c, method="wald", compare="diff")
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    assert (result.low, result.high) == pytest.approx((low, high), abs=1e-12)
    assert result.difference == pytest.approx(s_t / n_t - s_c / n_c)


def _histogram(values: list[float]) -> Histogram:
    bins = [bin_of(v) for v in values]
    return Histogram.of([(b, bins.count(b)) for b in set(bins)])


def test_latency_test_matches_scipy():
    rng = random.Random(1)
    control = [rng.lognormvariate(3.0, 0.4) for _ in range(300)]
    slower = [rng.lognormvariate(3.2, 0.4) for _ in range(280)]
    result = latency_comparison(_histogram(slower), _histogram(control))
    binned = [value_of([bin_of(v) for v in values]) for values in (slower, control)]
    expected = scipy_stats.mannwhitneyu(*binned, alternative="two-sided", method="asymptotic").pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-9)
    exact = np.median(slower) - np.median(control)
    assert result.difference == pytest.approx(exact, abs=RELATIVE_ACCURACY * (np.median(slower) + np.median(control)))
    assert result.low < result.difference < result.high and result.low > 0, "a real slowdown is significant"


def test_ties_count_as_scipy_counts_them():
    """Whole milliseconds: many equal values, the tie correction matters."""
    rng = random.Random(3)
    first = [float(rng.randint(10, 20)) for _ in range(200)]
    second = [float(rng.randint(11, 21)) for _ in range(150)]
    expected = scipy_stats.mannwhitneyu(first, second, method="asymptotic").pvalue
    assert mann_whitney_p(_histogram(first), _histogram(second)) == pytest.approx(expected, rel=1e-9)


def test_percentiles_are_within_the_bins_relative_accuracy():
    rng = random.Random(2)
    values = [rng.lognormvariate(2, 1) for _ in range(1001)] + [5000.0, 0.001, 0.0]
    histogram = _histogram(values)
    for q in (0, 1, 50, 95, 99, 99.9, 100):
        exact = float(np.percentile(values, q))
        # below 1 us everything reads as 1 us
        assert histogram.percentile(q) == pytest.approx(exact, rel=RELATIVE_ACCURACY, abs=2 * SMALLEST_MS), q
    assert Histogram.of([]).percentile(50) is None
