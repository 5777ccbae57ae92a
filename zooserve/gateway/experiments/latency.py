"""Latency kept as counts per logarithmic bin, so that the database can sum it and a report never reads a row
per request.

The bins are those of DDSketch (Masson, Rim and Lee, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch
with Relative-Error Guarantees", VLDB 2019): bin ``i`` holds the latencies in (gamma^(i-1), gamma^i], and
reading it back as 2 gamma^i / (gamma + 1) is off by at most RELATIVE_ACCURACY of the true value, so every
percentile and median read from the bins is within that fraction of the exact one. Counts add up, which is
what lets several gateways write the same histogram. The Mann-Whitney U test is computed from the same
counts: the values of one bin count as ties, as scipy counts equal values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

RELATIVE_ACCURACY = 0.001
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
SMALLEST_MS = 0.001  # latencies are recorded to the microsecond; a 0 goes in the bin of 1 us


def bin_of(latency_ms: float) -> int:
    return math.ceil(math.log(max(latency_ms, SMALLEST_MS)) / _LOG_GAMMA)


def value_of(bins: np.ndarray | int) -> np.ndarray | float:
    return 2 * GAMMA ** np.asarray(bins, dtype=float) / (GAMMA + 1)


@dataclass(frozen=True)
class Histogram:
    """Latencies of one variant: sorted bin numbers and the count in each."""

    bins: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, pairs: list[tuple[int, int]]) -> "Histogram":
        ordered = sorted(pairs)
        return cls(np.array([b for b, _ in ordered], dtype=np.int64), np.array([c for _, c in ordered], dtype=np.int64))

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def ranked(self, rank: int) -> float:
        """The value of the order statistic ``rank`` (0-based), to within RELATIVE_ACCURACY."""
        position = int(np.searchsorted(np.cumsum(self.counts), rank, side="right"))
        return float(value_of(self.bins[position]))

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0-100), linearly interpolated between order statistics as numpy's default."""
        n = self.n
        if n == 0:
            return None
        position = (n - 1) * q / 100
        low = math.floor(position)
        below, above = self.ranked(low), self.ranked(min(low + 1, n - 1))
        return below + (above - below) * (position - low)

    def median_se(self) -> float:
        """Standard error of the median from the distribution-free interval of ranks n/2 +- sqrt(n)/2."""
        n = self.n
        low = max(0, int(math.floor(n / 2 - math.sqrt(n) / 2)))
        high = min(n - 1, int(math.ceil(n / 2 + math.sqrt(n) / 2)))
        return (self.ranked(high) - self.ranked(low)) / 2


def mann_whitney_p(first: Histogram, second: Histogram) -> float:
    """Two-sided p-value of the Mann-Whitney U test, normal approximation with tie and continuity
    corrections: scipy.stats.mannwhitneyu(method="asymptotic") on the binned values."""
    n1, n2 = first.n, second.n
    bins = np.union1d(first.bins, second.bins)
    a = np.zeros(len(bins), dtype=float)
    b = np.zeros(len(bins), dtype=float)
    a[np.searchsorted(bins, first.bins)] = first.counts
    b[np.searchsorted(bins, second.bins)] = second.counts
    b_below = np.cumsum(b) - b
    u1 = float(np.sum(a * (b_below + b / 2)))
    u = max(u1, n1 * n2 - u1)
    n = n1 + n2
    ties = a + b
    spread = n1 * n2 / 12 * ((n + 1) - float(np.sum(ties**3 - ties)) / (n * (n - 1)))
    if spread <= 0:
        return 1.0
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(spread)
    return float(min(1.0, max(0.0, 2 * scipy_stats.norm.sf(z))))
