"""The running experiments: reload without restart, ramps, guardrail stops and restores, and the state that
several routers (as several gateway replicas) share through one database."""

from __future__ import annotations

import asyncio
import time

import pytest

from loadtests.postgres import running_postgres
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
    ramp: {variant: b, start_weight: 10, step: 20, every_s: 0.3, max_weight: 50}
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


def test_ramp_steps_up_on_guardrail_passes_once_its_interval_has_passed(router):
    async def scenario():
        experiment = router.get("exp")
        await router.refresh()
        weights = [router.weights(experiment)["b"]]
        await router.evaluate()  # too early: every_s has not passed
        weights.append(router.weights(experiment)["b"])
        for _ in range(3):
            await asyncio.sleep(0.35)
            await router.evaluate()
            weights.append(router.weights(experiment)["b"])
        await router.store.close()
        return weights, router.states["exp"].events

    weights, events = asyncio.run(scenario())
    assert weights == [10, 10, 30, 50, 50]
    assert [(e["event"], e["reason"]) for e in events] == [("ramped", "weight 30"), ("ramped", "weight 50")]


def _failing_b(router: ExperimentRouter, count: int = 200) -> None:
    for i in range(count):
        variant, status = ("a", 200) if i % 2 else ("b", 503 if i % 4 == 0 else 200)
        router.record(Record(f"r{i}", "primary", time.time(), "exp", variant,
                             "resnet50" if variant == "a" else "mobilenet_v2", status, 10.0, 1, "x", 0.5))


def test_a_failing_variant_is_stopped_then_restored(router):
    async def scenario():
        await router.refresh()
        _failing_b(router)
        breaches = await router.evaluate()
        weights_after = router.weights(router.get("exp"))
        report = await router.report("exp")
        await router.restore("exp", "b")
        restored = router.weights(router.get("exp"))
        await router.store.close()
        return breaches, weights_after, report, restored

    breaches, weights_after, report, restored = asyncio.run(scenario())
    assert [(b.variant, b.guardrail) for b in breaches] == [("b", "error_rate")]
    assert weights_after["b"] == 0 and restored["b"] > 0
    assert "error rate 50.0%" in report["state"]["stopped"]["b"]
    assert [e["event"] for e in report["state"]["events"]] == ["stopped"]
    assert {c["variant"] for c in report["comparisons"]} == {"b"}


@pytest.fixture(params=["sqlite", "postgresql"])
def two_replicas(request, tmp_path):
    """Two routers on one database, each with its own connection, as two gateway processes."""
    path = tmp_path / "experiments.yaml"
    path.write_text(FILE)

    def routers(url):
        return [ExperimentRouter(path, MODELS, RecordStore(tmp_path / "records.sqlite3", url), replica=name)
                for name in ("one", "two")]

    if request.param == "sqlite":
        yield routers(None)
    else:
        with running_postgres() as url:
            yield routers(url)


def test_replicas_share_stops_restores_and_one_evaluates(two_replicas):
    one, two = two_replicas

    async def scenario():
        await one.refresh()
        await two.refresh()
        assert one.states["exp"].started == two.states["exp"].started, "one ramp start for both"
        _failing_b(one)
        assert len(await one.evaluate(lease_s=30)) == 1, "one takes the lease and stops b"
        await two.refresh()
        stopped_on_two = two.weights(two.get("exp"))["b"]
        await two.restore("exp", "b")  # through the other replica
        await one.refresh()
        restored_on_one = one.weights(one.get("exp"))["b"]
        assert await two.evaluate(lease_s=30) == [], "b still fails, but the lease is one's"
        one.shared.release("guardrails")  # one shuts down
        assert len(await two.evaluate(lease_s=30)) == 1, "two took over"
        assert not await one.stop("exp", "b", "by hand"), "stopped already"
        for router in (one, two):
            await router.store.close()
        return stopped_on_two, restored_on_one, one.states["exp"].events

    stopped_on_two, restored_on_one, events = asyncio.run(scenario())
    assert stopped_on_two == 0 and restored_on_one == 10
    assert [(e["event"], e["replica"]) for e in events] == [("stopped", "one"), ("restored", "two"), ("stopped", "two")]


def test_an_expired_lease_is_taken_over(two_replicas):
    one, two = (router.shared for router in two_replicas)
    assert one.lease("guardrails", 0.5) and not two.lease("guardrails", 0.5)
    assert one.lease("guardrails", 0.5), "renewed by its holder"
    time.sleep(0.6)  # one hangs: its lease runs out
    assert two.lease("guardrails", 0.5) and not one.lease("guardrails", 0.5)
