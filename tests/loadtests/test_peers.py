"""The statistics of the comparison with the peers, and its interleaving."""

from __future__ import annotations

import math

import pytest

from loadtests.peers import compare, ratio_interval, summarize_system
from loadtests.runner import LoadResult


def result(users: int, rps: float, failures: int = 0) -> LoadResult:
    return LoadResult(users=users, rps=rps, p50_ms=10.0 * users, p95_ms=12.0 * users, p99_ms=15.0 * users,
                      requests=100, failures=failures, loadgen_cpu_share=0.1)


def test_a_constant_ratio_has_no_spread():
    ratio = ratio_interval([20.0, 30.0, 40.0], [10.0, 15.0, 20.0])
    assert ratio == {"ratio": 2.0, "ci95": [2.0, 2.0], "rounds": 3}


def test_the_interval_is_students_t_on_the_log_ratios():
    ours, peer = [22.0, 20.0, 18.0], [10.0, 10.0, 10.0]
    logs = [math.log(2.2), math.log(2.0), math.log(1.8)]
    mean, sd = sum(logs) / 3, (sum((x - sum(logs) / 3) ** 2 for x in logs) / 2) ** 0.5
    half = 4.302652729911275 * sd / 3 ** 0.5  # t(0.975, 2 degrees of freedom)
    got = ratio_interval(ours, peer)
    assert got["ratio"] == pytest.approx(math.exp(mean), abs=1e-3)
    assert got["ci95"] == pytest.approx([math.exp(mean - half), math.exp(mean + half)], abs=1e-3)
    assert got["ci95"][0] < 1.8 < 2.2 < got["ci95"][1], "three rounds give a wide interval"
    assert ratio_interval([20.0], [10.0])["ci95"] is None
    assert ratio_interval([20.0, 0.0], [10.0, 10.0])["ratio"] is None


def test_best_step_is_chosen_by_median_over_rounds():
    rounds = [[result(1, 10), result(2, 30)], [result(1, 11), result(2, 5)], [result(1, 12), result(2, 6)]]
    summary = summarize_system(rounds)
    assert summary["best_users"] == 1, "one fast round does not make a step the best"
    assert summary["best"]["rps"] == [10, 11, 12] and summary["best"]["median_rps"] == 11
    assert summary["steps"][2]["min_rps"] == 5 and summary["steps"][2]["max_rps"] == 30


def test_systems_run_every_step_in_interleaved_rounds_and_ratios_pair_rounds():
    log = []

    def system(name: str, speed: float):
        def run(users: int) -> LoadResult:
            log.append((name, users))
            return result(users, speed * users * (1 + len(log) / 1000))
        return run

    speeds = {"ours": 4.0, "ours_form": 3.0, "stock_default": 1.0, "stock_best_1w": 2.0, "stock_best_2w": 2.0,
              "litserve": 3.0}
    comparison = compare({name: system(name, speed) for name, speed in speeds.items()}, rounds=3, steps=(1, 2, 4))
    assert len(log) == 6 * 3 * 3
    per_round = [log[i:i + 18] for i in range(0, 54, 18)]
    assert all(sorted({name for name, _ in r}) == sorted(speeds) for r in per_round)
    assert len({tuple(name for name, _ in r[::3]) for r in per_round}) > 1, "the systems' order changes"
    assert all([users for _, users in r[i:i + 3]] == [1, 2, 4] for r in per_round for i in range(0, 18, 3))
    ratios = comparison["ratios"]
    assert ratios["stock_default"]["ratio"] == pytest.approx(4.0, rel=0.02)
    assert ratios["litserve"]["against"] == "ours_form" and ratios["litserve"]["ratio"] == pytest.approx(1.0, rel=0.02)
    assert comparison["systems"]["ours"]["best_users"] == 4
