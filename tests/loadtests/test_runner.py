"""How the benchmark finds the concurrency that saturates a server (loadtests/runner.py ``saturate``)."""

from __future__ import annotations

from loadtests.runner import LoadResult, saturate


def stepper(rates: dict[int, float]):
    """A run whose throughput at each number of users is given; it also records which were run."""
    asked: list[int] = []

    def run(users: int) -> LoadResult:
        asked.append(users)
        return LoadResult(users, rates[users], 10, 20, 30, 100, 0, 0.01)

    return run, asked


def test_one_flat_step_does_not_stop_the_stepping():
    # 2 users batched on one worker gain nothing; 4 users use both workers
    run, asked = stepper({1: 10.0, 2: 10.2, 4: 19.0, 8: 20.5, 16: 20.4})
    best, steps = saturate(run)
    assert asked == [1, 2, 4, 8, 16] and best.users == 8 and len(steps) == 5


def test_two_flat_steps_in_a_row_stop_it():
    run, asked = stepper({1: 5.0, 2: 5.1, 4: 5.0, 8: 9.0})
    best, _ = saturate(run)
    assert asked == [1, 2, 4] and best.users == 2


def test_no_stop_below_min_users():
    # 1 to 4 users all batched on one worker (batch size 4): flat until a second worker gets work at 8
    run, asked = stepper({1: 4.5, 2: 4.6, 4: 4.3, 8: 9.0, 16: 9.1})
    best, _ = saturate(run, min_users=8)
    assert asked == [1, 2, 4, 8, 16] and best.users == 16


def test_fixed_users_run_once():
    run, asked = stepper({6: 7.0})
    best, steps = saturate(run, fixed_users=6)
    assert asked == [6] and best.rps == 7.0 and len(steps) == 1
