"""The running experiments: reload without restart, ramps, guardrail stops and restores."""

from __future__ import annotations

import asyncio
import time

import pytest

from zooserve.gateway.experiments.config import ExperimentConfigError
from zooserve.gateway.experiments.router import ExperimentRouter
from zooserve.gateway.experiments.store import Record, RecordStore

MODELS = {"resnet50", "mobilenet_v2", "resnet18"}
FILE = """
experiments:
  - name: exp
    control: a
    variants:
      - {name: a, model: resnet50, weight: 90}
      - {name: b, model: mobilenet_v2, weight: 10}
    guardrails: {max_error_rate_increase: 0.05, min_requests: 50}
    ramp: {variant: b, start_weight: 10, step: 20, every_s: 60, max_weight: 50}
"""


@pytest.fixture
def router(tmp_path):
    path = tmp_path / "experiments.yaml"
    path.write_text(FILE)
    store = RecordStore(tmp_path / "records.sqlite3")
    return ExperimentRouter(path, MODELS, store, seed=0)


def test_reload_keeps_the_running_config_when_the_new_file_is_bad(router):
    router.path.write_text(FILE.replace("weight: 10", "weight: ten"))
    assert router.reload() is False
    assert "experiments.0.variants.1.weight" in router.last_error
    assert router.get("exp").variant("b").weight == 10
    router.path.write_text(FILE.replace("name: exp", "name: exp2"))
    assert router.reload() is True and router.names() == ["exp2"] and router.last_error is None


def test_a_bad_file_at_start_up_is_an_error(tmp_path):
    path = tmp_path / "experiments.yaml"
    path.write_text(FILE.replace("resnet50", "resnet5"))
    with pytest.raises(ExperimentConfigError, match="unknown model 'resnet5'"):
        ExperimentRouter(path, MODELS, RecordStore(tmp_path / "r.sqlite3"))


def test_watch_picks_up_a_changed_file(router):
    async def scenario():
        task = asyncio.create_task(router.watch(interval_s=0.05))
        await asyncio.sleep(0.1)
        router.path.write_text(FILE.replace("weight: 90", "weight: 80"))
        await asyncio.sleep(0.3)
        task.cancel()
        return router.get("exp").variant("a").weight

    assert asyncio.run(scenario()) == 80


def test_ramp_raises_the_weight_on_schedule(router):
    experiment = router.get("exp")
    start = router.states["exp"].started
    assert router.weights(experiment, start + 1)["b"] == 10
    assert router.weights(experiment, start + 61)["b"] == 30
    assert router.weights(experiment, start + 10_000)["b"] == 50


def test_a_failing_variant_is_stopped_then_restored(router):
    async def scenario():
        for i in range(200):
            variant, status = ("a", 200) if i % 2 else ("b", 503 if i % 4 == 0 else 200)
            router.record(Record(f"r{i}", "primary", time.time(), "exp", variant,
                                 "resnet50" if variant == "a" else "mobilenet_v2", status, 10.0, 1, "x", 0.5))
        breaches = await router.evaluate()
        weights_after = router.weights(router.get("exp"))
        report = await router.report("exp")
        router.restore("exp", "b")
        restored = router.weights(router.get("exp"))
        await router.store.close()
        return breaches, weights_after, report, restored

    breaches, weights_after, report, restored = asyncio.run(scenario())
    assert [(b.variant, b.guardrail) for b in breaches] == [("b", "error_rate")]
    assert weights_after["b"] == 0 and restored["b"] > 0
    assert "error rate 50.0%" in report["state"]["stopped"]["b"]
    assert [e["event"] for e in report["state"]["events"]] == ["stopped"]
    assert {c["variant"] for c in report["comparisons"]} == {"b"}
