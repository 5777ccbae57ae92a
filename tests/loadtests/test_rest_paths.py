"""The REST-path comparison's figures (loadtests/rest_paths.py): each option against TorchServe and against the
gateway as it runs, from known samples."""

from __future__ import annotations

from loadtests.rest_paths import CURRENT, DIRECT, OPTIONS, summarize, table


def test_each_option_is_set_against_torchserve_and_the_current_path():
    direct = [10.0 + 0.01 * i for i in range(101)]
    samples = {DIRECT: direct} | {name: [d + 1.0 + 0.5 * number for d in direct]
                                  for number, name in enumerate(OPTIONS)}
    result = summarize(samples, seed=0)
    assert result[CURRENT]["added_p50_ms"] == 1.0 and result[CURRENT]["added_p50_ci95_ms"] == [1.0, 1.0]
    assert "vs_current_p50_ms" not in result[CURRENT] and "added_p50_ms" not in result[DIRECT]
    for number, name in enumerate(OPTIONS):
        if name != CURRENT:
            assert result[name]["vs_current_p50_ms"] == 0.5 * number
            assert result[name]["vs_current_ci95_ms"] == [0.5 * number, 0.5 * number]
    assert table([result]).count("\n") == len(samples) + 1  # a header, a rule, a row a path
