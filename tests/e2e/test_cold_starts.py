"""Cold starts, as a new user walking the zoo meets them: `zooserve serve` running, every seed row requested
once in turn on a memory budget that holds only a few models, so the gateway unloads as it goes.

Each first request answers 200 within its deadline, or quickly (within ZOO_LOAD_WAIT_S) 503 model_loading
with a Retry-After, after which the retries end in 200; never a 504 caused by loading. The archives are
fixed-seed and eager (no export at build time, to keep the test's time in CI's budget): what a cold start
costs is the worker building its network, the same whatever the runtime's artefact (tests/e2e/test_runtimes.py
serves those).
"""

from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest

from tests.conftest import free_port, photo, torchserve_ports
from tests.gateway.test_main import Process, backends_env
from loadtests.metrics import metric
from zooserve.gateway.catalog import Catalog
from zooserve.gateway.settings import Settings
from zooserve.snapshot import FILE_NAME
from zooserve.store.build import ArchiveOptions, build_archive
from zooserve.store.catalog import write_catalog
from zooserve.zoo import list_models

pytestmark = pytest.mark.e2e
# the serve command runs with the gateway's defaults but for its addresses and memory budget
LOAD_WAIT_S = Settings.model_fields["load_wait_s"].default
DEADLINE_S = Settings.model_fields["request_timeout_s"].default
PER_ROW_S = 900.0  # a row's first request to its first 200, retries included: the heaviest load's timeout
SEED_ROWS = list_models(seed_only=True)


@pytest.fixture(scope="module")
def serving(tmp_path_factory, catalog_snapshot):
    store = tmp_path_factory.mktemp("cold_store")
    for name in SEED_ROWS:
        build_archive(name, store, ArchiveOptions(runtime="eager"))
    shutil.copy(catalog_snapshot, store / FILE_NAME)  # the session's, with these archives' facts
    catalog = Catalog(write_catalog(store))
    # room for the largest row and little else: most loads first unload the least recently used
    budget = max(catalog.memory_bytes(name) for name in SEED_ROWS) * 5 // 4
    ports, workdir = torchserve_ports(), tmp_path_factory.mktemp("cold_torchserve")
    rest_port = free_port()
    backends = json.loads(backends_env(f"http://127.0.0.1:{ports.inference}", f"http://127.0.0.1:{ports.management}",
                                       f"127.0.0.1:{ports.grpc_inference}", workdir))
    backends["local"]["memory_budget_bytes"] = budget
    env = {"ZOO_REST_PORT": str(rest_port), "ZOO_GRPC_PORT": str(free_port()), "ZOO_BACKENDS": json.dumps(backends),
           "ZOO_CATALOG_PATH": str(store / FILE_NAME)}
    process = Process(["-m", "zooserve.serve", "--store", str(store), "--models", *SEED_ROWS,
                       "--metrics-port", str(ports.metrics), "--grpc-management-port", str(ports.grpc_management)],
                      env)
    try:
        process.wait_for("Send requests to", timeout=300)
        yield f"http://127.0.0.1:{rest_port}"
        process.popen.terminate()
        process.finish(timeout=300)
    finally:
        process.kill()


def first_answer(http: httpx.Client, name: str) -> list[tuple[int, float, str]]:
    """Requests ``name`` until it answers 200, waiting what each 503's Retry-After asks: (status, seconds,
    Retry-After) of every answer."""
    answers, given_up = [], time.monotonic() + PER_ROW_S
    while True:
        started = time.monotonic()
        response = http.post(f"/predict/{name}", content=photo("chelsea.jpg"), headers={"Content-Type": "image/jpeg"})
        seconds = time.monotonic() - started
        answers.append((response.status_code, seconds, response.headers.get("Retry-After", "")))
        if response.status_code != 503 or time.monotonic() > given_up:
            return answers
        assert response.json()["error"]["code"] == "model_loading", response.text
        time.sleep(int(response.headers["Retry-After"]))


def test_every_seed_row_in_turn_answers_200_or_503_with_retry_after_never_504(serving):
    walk: dict[str, list[tuple[int, float, str]]] = {}
    with httpx.Client(base_url=serving, timeout=DEADLINE_S + 30, trust_env=False) as http:
        for name in SEED_ROWS:
            walk[name] = first_answer(http, name)
            print(f"{name}: " + ", ".join(f"{status} in {seconds:.1f} s" + (f" (Retry-After {after})" if after else "")
                                          for status, seconds, after in walk[name]), flush=True)
        unloads = metric(http.get("/metrics").text, "zoo_model_unloads_total")
    for name, answers in walk.items():
        *loading, last = answers
        assert last[0] == 200, f"{name}: {answers}"
        for status, seconds, retry_after in loading:
            assert status == 503 and retry_after.isdigit(), f"{name}: {answers}"
            assert seconds < LOAD_WAIT_S + 5, f"{name}: a 503 must come quickly, not after {seconds:.1f} s"
        assert last[1] < DEADLINE_S, f"{name}: {answers}"
    assert unloads >= len(SEED_ROWS) // 2, "the budget was meant to make the gateway unload as it went"
