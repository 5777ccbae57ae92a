"""The report and the guardrails on synthetic records with known answers."""

from __future__ import annotations

import random

import pytest
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from zooserve.gateway.experiments import guardrails
from zooserve.gateway.experiments.config import parse
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


def rows_for(variant: str, model: str, n: int, accuracy: float, error_rate: float, latency_ms: float, seed: int):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        failed = rng.random() < error_rate
        correct = rng.random() < accuracy
        rows.append({
            "request_id": f"{variant}{i}", "kind": "primary", "variant": variant, "model": model,
            "status": 503 if failed else 200, "latency_ms": rng.lognormvariate(0, 0.2) * latency_ms,
            "top1_index": 1 if correct else 2, "label_index": None if failed else 1, "agrees": None,
        })
    return rows


def shadow_rows(primaries, model, agree_rate, seed):
    rng = random.Random(seed)
    return [{**r, "kind": "shadow", "model": model, "agrees": rng.random() < agree_rate} for r in primaries]


def test_report_figures_match_statsmodels():
    a = rows_for("a", "resnet50", 600, 0.76, 0.01, 40, 1)
    b = rows_for("b", "mobilenet_v2", 600, 0.70, 0.01, 20, 2)
    report = build_report(EXPERIMENT, a + b + shadow_rows(b, "resnet50", 0.8, 3))
    fig_a, fig_b = report["variants"]
    assert fig_a["accuracy_ci"] == pytest.approx(proportion_confint(fig_a["correct"], fig_a["labelled"], method="wilson"))
    comparison = report["comparisons"][0]
    _, p_value = proportions_ztest([fig_b["correct"], fig_a["correct"]], [fig_b["labelled"], fig_a["labelled"]])
    assert comparison["accuracy"]["p_value"] == pytest.approx(p_value)
    assert comparison["verdict"].startswith("b worse than a: accuracy -")
    assert fig_b["agreement_with_control"] == pytest.approx(0.8, abs=0.05) and fig_b["agreement_pairs"] == 600
    assert comparison["latency_ms"]["difference"] < 0, "b is faster"


def test_no_difference_says_how_many_more_labels_are_needed():
    a = rows_for("a", "resnet50", 150, 0.75, 0.0, 30, 4)
    b = rows_for("b", "mobilenet_v2", 150, 0.72, 0.0, 30, 5)
    verdict = build_report(EXPERIMENT, a + b)["comparisons"][0]["verdict"]
    assert verdict.startswith("no significant difference yet: about ") and "more labelled requests" in verdict


def test_no_feedback_yet_is_said_plainly():
    a = [dict(r, label_index=None) for r in rows_for("a", "resnet50", 50, 0.7, 0, 30, 6)]
    b = [dict(r, label_index=None) for r in rows_for("b", "mobilenet_v2", 50, 0.7, 0, 30, 7)]
    assert build_report(EXPERIMENT, a + b)["comparisons"][0]["verdict"].startswith("no labelled requests yet")


@pytest.mark.parametrize(
    "b_kwargs, tripped",
    [
        ({"accuracy": 0.75, "error_rate": 0.01, "latency_ms": 30}, None),  # equal: never trips on noise
        ({"accuracy": 0.75, "error_rate": 0.20, "latency_ms": 30}, "error_rate"),  # failing
        ({"accuracy": 0.75, "error_rate": 0.01, "latency_ms": 90}, "p99_latency"),  # slow
        ({"accuracy": 0.55, "error_rate": 0.01, "latency_ms": 30}, "accuracy"),  # worse answers
    ],
)
def test_guardrails_trip_on_a_worse_variant_only(b_kwargs, tripped):
    a = variant_figures(EXPERIMENT, rows_for("a", "resnet50", 800, 0.75, 0.01, 30, 8), "a")
    b = variant_figures(EXPERIMENT, rows_for("b", "mobilenet_v2", 800, seed=9, **b_kwargs), "b")
    breach = guardrails.check(EXPERIMENT, b, a)
    assert (breach.guardrail if breach else None) == tripped
    if breach:
        assert breach.variant == "b" and "control" in breach.detail


def test_guardrails_wait_for_enough_requests():
    a = variant_figures(EXPERIMENT, rows_for("a", "resnet50", 50, 0.75, 0.0, 30, 10), "a")
    b = variant_figures(EXPERIMENT, rows_for("b", "mobilenet_v2", 50, 0.75, 0.9, 30, 11), "b")
    assert guardrails.check(EXPERIMENT, b, a) is None


def test_html_report_shows_the_figures_and_the_verdict():
    from zooserve.gateway.experiments.page import render

    a = rows_for("a", "resnet50", 300, 0.76, 0.01, 40, 12)
    b = rows_for("b", "mobilenet_v2", 300, 0.60, 0.01, 20, 13)
    report = build_report(EXPERIMENT, a + b, {"weights": {"a": 1, "b": 0}, "stopped": {"b": "too <slow>"}})
    html = render(report)
    assert html.startswith("<!doctype html>") and "<svg" in html
    assert "b worse than a: accuracy" in html
    assert "stopped: too &lt;slow&gt;" in html, "text from data is escaped"
    assert f"{report['variants'][0]['accuracy']:.1%}" in html
