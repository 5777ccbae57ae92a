"""The report's statistics against statsmodels and scipy on the same data."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
    samplesize_proportions_2indep_onetail,
)

from zooserve.gateway.experiments.stats import (
    latency_comparison,
    percentile,
    samples_needed,
    two_proportions,
    wilson_interval,
)


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


def test_latency_test_matches_scipy():
    rng = random.Random(1)
    control = [rng.lognormvariate(3.0, 0.4) for _ in range(300)]
    slower = [rng.lognormvariate(3.2, 0.4) for _ in range(280)]
    result = latency_comparison(slower, control)
    expected = scipy_stats.mannwhitneyu(slower, control, alternative="two-sided").pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-12)
    assert result.difference == pytest.approx(np.median(slower) - np.median(control))
    assert result.low < result.difference < result.high and result.low > 0, "a real slowdown is significant"


def test_percentiles_match_numpy():
    values = [random.Random(2).random() for _ in range(101)] + [5.0, 0.001]
    for q in (50, 95, 99):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 50) is None


@pytest.mark.parametrize("p_control, p_treatment", [(0.70, 0.75), (0.5, 0.52), (0.9, 0.8)])
def test_sample_size_agrees_with_statsmodels(p_control, p_treatment):
    expected = samplesize_proportions_2indep_onetail(
        p_treatment - p_control, p_control, power=0.8, alpha=0.05, alternative="two-sided"
    )
    assert samples_needed(p_control, p_treatment) == pytest.approx(expected, rel=0.03)
    assert samples_needed(0.5, 0.5) is None
