"""The sequential statistics: the mSPRT's formulas, and (a fast run of loadtests/sequential.py) that they keep
their error rate when looked at after every batch, where the fixed-horizon test does not."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from loadtests.sequential import AA, Scenario, simulate
from zooserve.gateway.experiments import sequential


def _likelihood_ratio(theta: float, theta0: float, variance: float, tau: float = sequential.MIXTURE_SD) -> float:
    """Johari et al.'s mixture likelihood ratio for a normal estimate, written out once more."""
    return math.sqrt(variance / (variance + tau**2)) * math.exp(
        tau**2 * (theta - theta0) ** 2 / (2 * variance * (variance + tau**2)))


@pytest.mark.parametrize("counts", [(450, 600, 400, 610), (20, 1000, 41, 980), (75, 100, 70, 100)])
def test_p_value_and_confidence_sequence_follow_the_mixture_ratio(counts):
    s_t, n_t, s_c, n_c = counts
    sequence = sequential.two_proportions([s_t], [n_t], [s_c], [n_c], alpha=0.05)
    p_t, p_c = s_t / n_t, s_c / n_c
    pooled = (s_t + s_c) / (n_t + n_c)
    v_null = pooled * (1 - pooled) * (1 / n_t + 1 / n_c)
    assert sequence.p_value[0] == pytest.approx(min(1.0, 1 / _likelihood_ratio(p_t - p_c, 0, v_null)))
    # the ends of the confidence sequence are the differences the test rejects at exactly 1 / alpha, each
    # side's variance taken at the point of its Wilson interval nearest 1/2
    v = 0
    for s, n in ((s_t, n_t), (s_c, n_c)):
        p = float(np.clip(0.5, *proportion_confint(s, n, method="wilson")))
        v += p * (1 - p) / n
    for end in (sequence.low[0], sequence.high[0]):
        assert _likelihood_ratio(p_t - p_c, end, v) == pytest.approx(1 / 0.05)


def test_running_minimum_and_intersection_over_looks():
    rng = np.random.default_rng(5)
    n = np.arange(1, 41) * 50
    s_t, s_c = rng.binomial(50, 0.7, 40).cumsum(), rng.binomial(50, 0.7, 40).cumsum()
    sequence = sequential.two_proportions(s_t, n, s_c, n)
    assert np.all(np.diff(sequence.p_value) <= 0) and np.all(np.diff(sequence.low) >= 0)
    assert np.all(np.diff(sequence.high) <= 0) and np.all(sequence.low <= sequence.high)
    # a look counts once the smaller side expects 5 events (and 5 non-events) at the pooled rate
    early = sequential.two_proportions([0, 3, 0, 45], [0, 5, 20, 100], [0, 0, 2, 10], [0, 0, 4000, 100])
    assert list(early.p_value[:3]) == [1, 1, 1] and list(early.low[:3]) == [-1] * 3 and list(early.high[:3]) == [1] * 3
    assert early.p_value[3] < 0.05 and early.low[3] > 0 and list(early.counted()) == [3]


def test_trials_to_detect_is_where_the_test_starts_rejecting():
    needed = sequential.trials_to_detect(0.70, 0.75)
    assert needed is not None and sequential.trials_to_detect(0.7, 0.7) is None
    for n, rejects in ((needed, True), (needed - 1, False)):  # the proportions exactly as they are, at n a side
        p = sequential.two_proportions([0.70 * n], [n], [0.75 * n], [n]).p_value[0]
        assert (p < 0.05) == rejects, (n, p)


@pytest.mark.parametrize("scenario", AA, ids=lambda s: f"{s.metric}-{s.p_control}")
def test_aa_experiments_looked_at_every_100_records(scenario: Scenario):
    """300 A/A experiments of 3,000 records, looked at after every 100: the mSPRT says "different" in at
    most 5% of them; the fixed-horizon test, read at every look, in far more (the full run is in
    docs/experiments.md)."""
    outcome = simulate(scenario, experiments=300, batch=100, looks=30, seed=11)
    assert np.mean(outcome.sequential > 0) <= 0.05
    assert np.mean(outcome.fixed > 0) > 0.15


def test_a_real_difference_is_detected():
    outcome = simulate(Scenario("accuracy", 0.75, 0.68), experiments=200, batch=100, looks=30, seed=12)
    assert np.mean(outcome.sequential > 0) > 0.8 and outcome.sign_right[outcome.sequential > 0].all()
