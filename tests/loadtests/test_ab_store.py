"""loadtests/ab_store.py keeps working (a few thousand records on SQLite; the figures are not judged here: the
benchmark's run is in docs/experiments.md)."""

from __future__ import annotations

from loadtests import ab_store


def test_the_benchmark_writes_reports_and_evaluates(tmp_path, capsys):
    assert ab_store.main(["--records", "3000", "--repeat", "2", "--dir", str(tmp_path)]) == 0
    output = capsys.readouterr().out
    assert "sqlite, 3000 records in batches of 200, 10% labelled" in output
    for line in ("writing: ", "one feedback on its own: ", "report_s: median ", "guardrail_pass_s: median "):
        assert line in output, output
    assert list(tmp_path.iterdir()) == [], "the data is removed after the run"
