"""The REST-path comparison's figures (loadtests/rest_paths.py): each path against TorchServe, and what each
option saves alone, from known samples."""

from __future__ import annotations

from loadtests.rest_paths import DIRECT, EFFECTS, OPTIONS, summarize, table


def test_each_option_is_set_against_the_path_without_it():
    direct = [10.0 + 0.01 * i for i in range(101)]
    shift = {name: 1.0 + 0.25 * number for number, name in enumerate(OPTIONS)}
    samples = {DIRECT: direct} | {name: [d + shift[name] for d in direct] for name in OPTIONS}
    result = summarize(samples, seed=0)
    for name in OPTIONS:
        assert result["paths"][name]["added"] == {"p50_ms": shift[name], "ci95_ms": [shift[name], shift[name]]}
    assert "added" not in result["paths"][DIRECT]
    for option, (without, with_it) in EFFECTS.items():
        saved = shift[without] - shift[with_it]
        assert result["saves"][option] == {"p50_ms": saved, "ci95_ms": [saved, saved]}, option
    # two tables: a header, a rule and a row a path and run; a blank line, a header, a rule and a row an option
    assert len(table([result, result]).splitlines()) == 2 + 2 * len(samples) + 3 + len(EFFECTS)
