"""Statistics that stay right when people look at them while the data flows in.

A fixed-horizon p-value is valid once, at a sample size chosen in advance; read again after every batch,
and acted upon the first time it dips under 0.05, it declares far more than 5% of equal variants different
(scripts/sequential_simulation.py measures how many). The report and the guardrails use instead:

- the mixture sequential probability ratio test (mSPRT) of Johari, Koomen, Pekelis and Walsh, "Always
  Valid Inference: Continuous Monitoring of A/B Tests", Operations Research 70(3), 2022 (first as Johari,
  Pekelis and Walsh, arXiv:1512.04922, 2015), for the difference of two proportions under its normal
  approximation: with the estimate theta = p_t - p_c, its variance V and a normal mixture of scale tau over
  the alternatives, the likelihood ratio against theta = 0 is
      Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 theta^2 / (2 V (V + tau^2))),
  and the always-valid p-value is the running minimum of 1 / Lambda (V pooled, as the z-test's, under the
  null hypothesis);
- its confidence sequence, the set of differences that test does not reject: theta +- sqrt(V (V + tau^2) /
  tau^2 * (log((V + tau^2) / V) - 2 log alpha)) (V unpooled), intersected over time. It is the normal
  mixture boundary of Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform, nonparametric, nonasymptotic
  confidence sequences", Annals of Statistics 49(2), 2021: it covers the true difference at every moment
  at once with probability 1 - alpha, however often it is read.

Both are computed at every look the data allows (the report: the end of every time bucket); looking less
often only makes them more conservative. Two guards keep the normal approximation honest where counts are
small (a canary with a few percent of the traffic, error rates of a percent or less): a look counts only
once the smaller side expects at least MIN_EXPECTED events and non-events at the pooled rate, and each
side's variance in the confidence sequence is taken at the point of its 95% Wilson interval nearest 1/2,
so that a side with few trials and no event yet gets no false certainty. Without them, simulated A/A
canaries (5% of the traffic, error rates of 0.5-1%) were declared different 7-9% of the time;
MIN_EXPECTED = 2 was chosen by the same simulation (loadtests/sequential.py, its results in
docs/experiments.md): it kept every simulated scenario under 2%, where the textbook 5 delays a canary's
verdict more for no gain there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .stats import wilson_interval

# tau: the size of difference (in proportion points) the test is tuned to find soonest. Differences of a few
# points of accuracy or error rate are what model comparisons are about.
MIXTURE_SD = 0.05
MIN_EXPECTED = 2


@dataclass(frozen=True)
class Sequence:
    """Per look: the difference treatment - control, its confidence sequence and the always-valid p-value."""

    difference: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p_value: np.ndarray

    def counted(self) -> np.ndarray:
        """The looks at which the test had enough data to say anything."""
        return np.flatnonzero((self.low > -1) | (self.high < 1))

    def last(self) -> dict[str, float]:
        if not len(self.p_value):  # no look yet
            return {"difference": 0.0, "low": -1.0, "high": 1.0, "p_value": 1.0}
        return {"difference": float(self.difference[-1]), "low": float(self.low[-1]),
                "high": float(self.high[-1]), "p_value": float(self.p_value[-1])}


def two_proportions(successes_t, trials_t, successes_c, trials_c, alpha: float = 0.05,
                    tau: float = MIXTURE_SD) -> Sequence:
    """The mSPRT and its confidence sequence at each look, given the cumulative counts at each look (arrays
    of equal length, in time order). At looks that do not count yet (MIN_EXPECTED): p = 1, the interval [-1, 1]."""
    s_t, n_t, s_c, n_c = (np.asarray(x, dtype=float) for x in (successes_t, trials_t, successes_c, trials_c))
    pooled = (s_t + s_c) / np.maximum(n_t + n_c, 1)
    ready = np.minimum(n_t, n_c) * np.minimum(pooled, 1 - pooled) >= MIN_EXPECTED
    both = np.minimum(n_t, n_c) > 0
    n_t, n_c = np.maximum(n_t, 1), np.maximum(n_c, 1)
    p_t, p_c = s_t / n_t, s_c / n_c
    difference = np.where(both, p_t - p_c, 0.0)
    v_null = pooled * (1 - pooled) * (1 / n_t + 1 / n_c)
    p_value = np.where(ready, np.minimum(1.0, np.exp(-_log_ratio(difference, v_null, tau))), 1.0)
    v = _variance(s_t, n_t) + _variance(s_c, n_c)
    tau2 = tau * tau
    half = np.sqrt(v * (v + tau2) / tau2 * (np.log((v + tau2) / v) - 2 * math.log(alpha)))
    low = np.where(ready, difference - half, -1.0)
    high = np.where(ready, difference + half, 1.0)
    return Sequence(difference, np.maximum.accumulate(np.maximum(low, -1.0)),
                    np.minimum.accumulate(np.minimum(high, 1.0)), np.minimum.accumulate(p_value))


def _log_ratio(difference: np.ndarray, variance: np.ndarray, tau: float) -> np.ndarray:
    tau2 = tau * tau
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * np.log(variance / (variance + tau2)) + tau2 * difference**2 / (2 * variance * (variance + tau2))


def _variance(successes: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """The variance of one side's proportion at the point of its 95% Wilson interval nearest 1/2."""
    low, high = wilson_interval(successes, trials)
    p = np.clip(0.5, low, high)
    return p * (1 - p) / trials


def trials_to_detect(p_t: float, p_c: float, alpha: float = 0.05, tau: float = MIXTURE_SD) -> int | None:
    """Trials per variant at which the mSPRT would reject with these proportions, were they to stay as they
    are; None when they are equal."""
    if p_t == p_c:
        return None
    pooled = (p_t + p_c) / 2
    threshold = -math.log(alpha)

    def rejects(n: int) -> bool:
        variance = np.array(pooled * (1 - pooled) * 2 / n)
        return (n * min(pooled, 1 - pooled) >= MIN_EXPECTED
                and float(_log_ratio(np.array(p_t - p_c), variance, tau)) >= threshold)

    high = 1
    while not rejects(high):
        high *= 2
    low = high // 2
    while high - low > 1:  # the ratio grows with n once the difference is fixed: bisect
        middle = (low + high) // 2
        low, high = (low, middle) if rejects(middle) else (middle, high)
    return high
