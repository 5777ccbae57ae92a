"""Experiment files are validated with clear messages; assignment respects weights and stickiness."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from scipy.stats import chisquare

from zooserve.gateway.experiments.assign import assign, pick, unit_interval
from zooserve.gateway.experiments.config import ExperimentConfigError, parse

MODELS = {"resnet18", "resnet50", "mobilenet_v2", "squeezenet1_0"}
GOOD = """
experiments:
  - name: r50_vs_mnv2
    control: a
    assignment: {mode: sticky, key: X-User-ID}
    variants:
      - {name: a, model: resnet50, weight: 70}
      - {name: b, model: mobilenet_v2, weight: 20}
      - {name: c, model: resnet18, weight: 10}
    shadows: [squeezenet1_0]
    guardrails: {max_error_rate_increase: 0.05, max_p99_latency_ratio: 2.0}
"""


def test_a_good_file_parses():
    experiment = parse(GOOD, "good.yaml", MODELS).by_name()["r50_vs_mnv2"]
    assert [v.model for v in experiment.variants] == ["resnet50", "mobilenet_v2", "resnet18"]
    assert experiment.assignment.mode == "sticky" and experiment.shadows == ["squeezenet1_0"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (("weight: 20", "weight: -1"), "bad.yaml: line 8, experiments.0.variants.1.weight: Input should be greater than 0"),
        (("mode: sticky", "mode: sometimes"), "bad.yaml: line 5, experiments.0.assignment.mode: Input should be 'random' or 'sticky'"),
        (("control: a", "control: z"), "bad.yaml: line 3, experiments.0: Value error, control 'z' is not one of the variants"),
        (("model: resnet18", "model: resnet19"), "bad.yaml: experiment 'r50_vs_mnv2' names unknown model 'resnet19'"),
        (("name: r50_vs_mnv2", "name: resnet50"), "bad.yaml: experiment 'resnet50' has the name of a model"),
        (("shadows: [squeezenet1_0]", "shadowz: [x]"), "bad.yaml: line 10, experiments.0.shadowz: Extra inputs are not permitted"),
        (("    control: a", "   control: a"), "bad.yaml: not valid YAML"),
    ],
)
def test_a_bad_file_is_rejected_naming_line_and_field(edit, message):
    with pytest.raises(ExperimentConfigError) as caught:
        parse(GOOD.replace(*edit), "bad.yaml", MODELS)
    assert str(caught.value).startswith(message)


def test_assignment_respects_weights_chi_square():
    experiment = parse(GOOD, "good.yaml", MODELS).experiments[0]
    weights = {v.name: v.weight for v in experiment.variants}
    counts = Counter(assign(experiment, weights, f"user-{i}", random.Random(0)) for i in range(20_000))
    observed = [counts[name] for name in weights]
    expected = [20_000 * w / sum(weights.values()) for w in weights.values()]
    assert chisquare(observed, expected).pvalue > 0.001


def test_sticky_assignment_gives_a_user_the_same_variant():
    experiment = parse(GOOD, "good.yaml", MODELS).experiments[0]
    weights = {v.name: v.weight for v in experiment.variants}
    rng = random.Random()
    for user in ("alice", "bob", "carol", "dave"):
        assert len({assign(experiment, weights, user, rng) for _ in range(50)}) == 1


def test_random_assignment_ignores_the_key():
    experiment = parse(GOOD.replace("mode: sticky", "mode: random"), "good.yaml", MODELS).experiments[0]
    weights = {v.name: v.weight for v in experiment.variants}
    rng = random.Random(3)
    assert len({assign(experiment, weights, "alice", rng) for _ in range(200)}) == 3


def test_zero_weight_variants_get_no_traffic():
    assert {pick({"a": 1, "b": 0}, i / 100) for i in range(100)} == {"a"}
    with pytest.raises(ValueError, match="no variant has traffic"):
        pick({"a": 0, "b": 0}, 0.5)
    assert 0 <= unit_interval("exp", "user") < 1
