"""Load on first use and least-recently-used unloading under a memory budget, on a real TorchServe."""

from __future__ import annotations

from tests.gateway.conftest import backend_for
from tests.gateway.test_rest import error
from zooserve.gateway.catalog import Catalog
from zooserve.gateway.settings import GiB, MiB
from zooserve.snapshot import WORKER_BASE_BYTES
from zooserve.store.build import WORKERS


def test_estimates_grow_with_the_weights(catalog_snapshot):
    catalog = Catalog(catalog_snapshot)  # the estimates are written with the catalog, when archives are built
    small, large = catalog.memory_bytes("squeezenet1_0"), catalog.memory_bytes("resnet18")
    assert WORKERS * WORKER_BASE_BYTES < small < large < WORKERS * 1200 * MiB


def test_least_recently_used_model_is_unloaded_to_fit_the_budget(start_gateway, torchserve, management):
    # room for one small model at a time (each estimate is 800-1200 MiB per worker); the budget is kept
    management.unload("squeezenet1_0", "resnet18")
    budget = WORKERS * 1200 * MiB
    with start_gateway(backend_for(torchserve, memory_budget_bytes=budget)) as gateway:
        first = gateway.predict("squeezenet1_0")
        assert first.status_code == 200, first.text
        assert management.registered() == {"squeezenet1_0"}  # whatever else was loaded made room

        second = gateway.predict("resnet18")
        assert second.status_code == 200 and second.json()["timings"]["load_ms"] > 0
        assert management.registered() == {"resnet18"}
        assert gateway.metric("zoo_model_unloads_total", model="squeezenet1_0") == 1
        assert gateway.metric("zoo_model_loads_total", model="resnet18", outcome="loaded") == 1
        assert gateway.metric("zoo_models_loaded", backend="local") == 1
        assert 0 < gateway.metric("zoo_backend_memory_reserved_bytes", backend="local") <= budget
        assert gateway.metric("zoo_model_load_duration_seconds_count", model="resnet18") == 1

        models = {m["name"]: m["loaded"] for m in gateway.http.get("/models").json()["models"]}
        assert [name for name, loaded in models.items() if loaded] == ["resnet18"]


def test_a_model_lost_by_the_backend_is_loaded_again(gateway, management):
    assert gateway.predict("resnet18").status_code == 200
    management.unload("resnet18")  # as if TorchServe had restarted
    answer = gateway.predict("resnet18")
    assert answer.status_code == 200, answer.text
    assert answer.json()["timings"]["load_ms"] > 0
    assert "resnet18" in management.registered()


def test_a_model_over_the_whole_budget_is_503(start_gateway, torchserve, management, catalog_snapshot):
    management.unload("resnet18")
    with start_gateway(backend_for(torchserve, memory_budget_bytes=GiB // 2)) as gateway:
        need = Catalog(catalog_snapshot).memory_bytes("resnet18")
        assert error(gateway.predict("resnet18")) == (
            503, "over_memory_budget", f"model 'resnet18' needs about {need / GiB:.1f} GiB, more than the memory "
            "budget of backend 'local' (0.5 GiB)")
