"""The gateway-overhead statistics (loadtests/overhead.py): the bootstrap interval of the added p50."""

from __future__ import annotations

import random

from loadtests.overhead import added_p50_interval


def test_a_constant_shift_has_no_spread():
    base = [10.0 + 0.01 * i for i in range(101)]
    low, high = added_p50_interval([b + 2.0 for b in base], base, random.Random(0))
    assert abs(low - 2.0) < 1e-9 and abs(high - 2.0) < 1e-9


def test_the_interval_holds_a_known_shift_and_narrows_with_rounds():
    rng = random.Random(1)

    def rounds(n):
        base = [100 + rng.gauss(0, 3) for _ in range(n)]
        return [100 + 1.5 + rng.gauss(0, 3) for _ in range(n)], base
    low, high = added_p50_interval(*rounds(400), random.Random(2))
    assert low < 1.5 < high
    few_low, few_high = added_p50_interval(*rounds(40), random.Random(2))
    assert few_high - few_low > high - low
