"""The report and the guardrails from the database's running totals, against the exact figures of the
records themselves (numpy, scipy, statsmodels), on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from loadtests.postgres import running_postgres
from tests.experiments.recorded import rows_for, shadow_rows, stored_totals
from zooserve.gateway.experiments import guardrails
from zooserve.gateway.experiments.config import parse
from zooserve.gateway.experiments.latency import RELATIVE_ACCURACY, bin_of, value_of
from zooserve.gateway.experiments.report import build_report, variant_figures

MODELS = {"resnet50", "mobilenet_v2", "squeezenet1_0"}
CONFIG = """
experiments:
  - name: exp
    control: a
    variants:
      - {name: a, model: resnet50, weight: 1}
      - {name: b, model: mobilenet_v2, weight: 1}
    shadows: [resnet50]
    guardrails: {max_error_rate_increase: 0.02, max_p99_latency_ratio: 1.5, max_accuracy_drop: 0.05,
                 min_requests: 100, min_labels: 100}
"""
EXPERIMENT = parse(CONFIG, "exp.yaml", MODELS).experiments[0]


@pytest.fixture(scope="module")
def postgres_url():
    with running_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else None


def _exact(rows: list[dict], variant: str) -> dict:
    """The figures of one variant straight from its records."""
    primary = [r for r in rows if r["kind"] == "primary" and r["variant"] == variant]
    ok = [r for r in primary if r["status"] == 200]
    labelled = [r for r in ok if r["label_index"] is not None]
    return {"requests": len(primary), "errors": len(primary) - len(ok), "labelled": len(labelled),
            "correct": sum(r["label_index"] == r["top1_index"] for r in labelled),
            "latencies": np.array([r["latency_ms"] for r in ok])}


def test_report_from_totals_matches_the_records(tmp_path, database_url):
    a = rows_for("a", "resnet50", 600, 0.76, 0.01, 40, 1)
    b = rows_for("b", "mobilenet_v2", 600, 0.70, 0.01, 20, 2)
    rows = a + b + shadow_rows(b, "resnet50", 0.8, 3)
    report = build_report(EXPERIMENT, stored_totals(rows, tmp_path, database_url))
    exact = {v: _exact(rows, v) for v in "ab"}
    for figures in report["variants"]:
        expected = exact[figures["variant"]]
        for count in ("requests", "errors", "labelled", "correct"):
            assert figures[count] == expected[count], count
        assert figures["error_rate"] == expected["errors"] / expected["requests"]
        assert figures["accuracy"] == expected["correct"] / expected["labelled"]
        assert figures["accuracy_ci"] == pytest.approx(proportion_confint(expected["correct"], expected["labelled"],
                                                                          method="wilson"), abs=1e-12)
        for q in (50, 95, 99):  # from the latency bins: within their stated relative accuracy
            assert figures["latency_ms"][f"p{q}"] == pytest.approx(np.percentile(expected["latencies"], q),
                                                                   rel=RELATIVE_ACCURACY * 1.0001)
    shadows = [r for r in rows if r["kind"] == "shadow"]
    assert report["variants"][1]["agreement_pairs"] == len(shadows)
    assert report["variants"][1]["agreement_with_control"] == sum(r["agrees"] for r in shadows) / len(shadows)
    (comparison,) = report["comparisons"]
    for metric, (hits, trials) in {"accuracy": ("correct", "labelled"), "error_rate": ("errors", "requests")}.items():
        _, p_value = proportions_ztest([exact["b"][hits], exact["a"][hits]], [exact["b"][trials], exact["a"][trials]])
        assert comparison[metric]["p_value"] == pytest.approx(p_value, rel=1e-9)
    latency = comparison["latency_ms"]
    medians = [np.median(exact[v]["latencies"]) for v in "ba"]
    assert latency["difference"] == pytest.approx(medians[0] - medians[1], abs=RELATIVE_ACCURACY * sum(medians))
    binned = [value_of([bin_of(x) for x in exact[v]["latencies"]]) for v in "ba"]
    assert latency["p_value"] == pytest.approx(
        scipy_stats.mannwhitneyu(*binned, method="asymptotic").pvalue, rel=1e-6)
    assert latency["difference"] < 0, "b is faster"


def test_mann_whitney_from_bins_is_close_to_scipy_on_the_raw_latencies(tmp_path):
    a = rows_for("a", "resnet50", 400, 0.75, 0.0, 30, 21)
    b = rows_for("b", "mobilenet_v2", 400, 0.75, 0.0, 30.6, 22)  # 2% slower: a p-value far from 0 or 1
    comparison = build_report(EXPERIMENT, stored_totals(a + b, tmp_path))["comparisons"][0]
    raw = scipy_stats.mannwhitneyu(*[_exact(a + b, v)["latencies"] for v in "ba"]).pvalue
    assert 0.01 < raw < 0.99 and comparison["latency_ms"]["p_value"] == pytest.approx(raw, abs=0.01)


def test_the_verdict_waits_for_the_sequential_test(tmp_path):
    """600 requests a side and 6 points of accuracy apart: the fixed-horizon p-value is under 0.05 already,
    but read while the data comes in it would be wrong too often; the always-valid one is not yet."""
    a = rows_for("a", "resnet50", 600, 0.76, 0.01, 40, 1)
    b = rows_for("b", "mobilenet_v2", 600, 0.70, 0.01, 20, 2)
    (comparison,) = build_report(EXPERIMENT, stored_totals(a + b, tmp_path))["comparisons"]
    assert comparison["accuracy"]["p_value"] < 0.05 < comparison["sequential"]["accuracy"]["p_value"]
    assert comparison["verdict"].startswith("no significant difference yet: about ")
    sequence = comparison["sequential"]["accuracy"]
    assert sequence["low"] < comparison["accuracy"]["low"] < 0 < sequence["high"], "wider than the fixed interval"
    a = rows_for("a", "resnet50", 3000, 0.76, 0.01, 40, 4)
    b = rows_for("b", "mobilenet_v2", 3000, 0.70, 0.01, 20, 5)
    (comparison,) = build_report(EXPERIMENT, stored_totals(a + b, tmp_path / "more"))["comparisons"]
    assert comparison["verdict"].startswith("b worse than a: accuracy -")
    assert "confidence sequence" in comparison["verdict"] and "always-valid p = " in comparison["verdict"]
    course = comparison["course"]["accuracy"]
    assert len(course["time"]) > 10 and course["time"] == sorted(course["time"])
    assert all(np.diff(course["low"]) >= 0) and all(np.diff(course["high"]) <= 0), "intersected over time"


def test_no_difference_says_how_many_more_labels_are_needed(tmp_path):
    a = rows_for("a", "resnet50", 150, 0.75, 0.0, 30, 4)
    b = rows_for("b", "mobilenet_v2", 150, 0.72, 0.0, 30, 5)
    verdict = build_report(EXPERIMENT, stored_totals(a + b, tmp_path))["comparisons"][0]["verdict"]
    assert verdict.startswith("no significant difference yet: about ") and "more labelled requests" in verdict


def test_no_feedback_yet_is_said_plainly(tmp_path):
    a = [dict(r, label_index=None) for r in rows_for("a", "resnet50", 50, 0.7, 0, 30, 6)]
    b = [dict(r, label_index=None) for r in rows_for("b", "mobilenet_v2", 50, 0.7, 0, 30, 7)]
    report = build_report(EXPERIMENT, stored_totals(a + b, tmp_path))
    assert report["comparisons"][0]["verdict"].startswith("no labelled requests yet")


def _figures(rows: list[dict], directory):
    totals = stored_totals(rows, directory)
    return variant_figures(EXPERIMENT, totals, "b"), variant_figures(EXPERIMENT, totals, "a")


@pytest.mark.parametrize(
    "b_kwargs, tripped",
    [
        ({"accuracy": 0.75, "error_rate": 0.01, "latency_ms": 30}, None),  # equal: never trips on noise
        ({"accuracy": 0.75, "error_rate": 0.20, "latency_ms": 30}, "error_rate"),  # failing
        ({"accuracy": 0.75, "error_rate": 0.01, "latency_ms": 90}, "p99_latency"),  # slow
        ({"accuracy": 0.55, "error_rate": 0.01, "latency_ms": 30}, "accuracy"),  # worse answers
    ],
)
def test_guardrails_trip_on_a_worse_variant_only(tmp_path, b_kwargs, tripped):
    rows = rows_for("a", "resnet50", 800, 0.75, 0.01, 30, 8) + rows_for("b", "mobilenet_v2", 800, seed=9, **b_kwargs)
    breach = guardrails.check(EXPERIMENT, *_figures(rows, tmp_path))
    assert (breach.guardrail if breach else None) == tripped
    if breach:
        assert breach.variant == "b" and "control" in breach.detail


def test_guardrails_wait_for_enough_requests(tmp_path):
    rows = rows_for("a", "resnet50", 50, 0.75, 0.0, 30, 10) + rows_for("b", "mobilenet_v2", 50, 0.75, 0.9, 30, 11)
    assert guardrails.check(EXPERIMENT, *_figures(rows, tmp_path)) is None


def test_html_report_shows_the_figures_and_the_verdict(tmp_path):
    from zooserve.gateway.experiments.page import render

    a = rows_for("a", "resnet50", 300, 0.76, 0.01, 40, 12)
    b = rows_for("b", "mobilenet_v2", 300, 0.60, 0.01, 20, 13)
    report = build_report(EXPERIMENT, stored_totals(a + b, tmp_path),
                          {"weights": {"a": 1, "b": 0}, "stopped": {"b": "too <slow>"}})
    html = render(report)
    assert html.startswith("<!doctype html>") and "<svg" in html
    assert "b worse than a: accuracy" in html
    assert "stopped: too &lt;slow&gt;" in html, "text from data is escaped"
    assert f"{report['variants'][0]['accuracy']:.1%}" in html
