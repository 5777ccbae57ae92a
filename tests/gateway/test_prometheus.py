"""A real Prometheus (Debian's prometheus, as `make test` installs it) scraping the gateway's /metrics and
TorchServe's metrics endpoint every second: after a few predictions, PromQL answers the model's request
rate from what it scraped."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable

import httpx
import pytest
import yaml

from tests.conftest import free_port

pytestmark = pytest.mark.e2e
MODEL = "resnet18"


@pytest.fixture
def prometheus(gateway, torchserve, tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:  # `make test` installs it; a bare run must not pass silently
        pytest.fail("prometheus not found: install the Debian package (scripts/system-deps.sh prometheus)")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "gateway", "static_configs": [{"targets": [gateway.url.removeprefix("http://")]}]},
            {"job_name": "torchserve",
             "static_configs": [{"targets": [torchserve.metrics_url.removeprefix("http://")]}]},
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                                f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address={address}"],
                               stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://{address}", timeout=10)
    try:
        wait_for(lambda: _ready(client), 30, "Prometheus never became ready", process, tmp_path)
        yield client
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _ready(client: httpx.Client) -> bool:
    try:
        return client.get("/-/ready").status_code == 200
    except httpx.TransportError:
        return False


def wait_for(check: Callable[[], object], timeout: float, message: str, process=None, logs=None):
    deadline = time.monotonic() + timeout
    while True:
        if (value := check()):
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"Prometheus exited: {(logs / 'prometheus.log').read_text()[-2000:]}")
        assert time.monotonic() < deadline, message
        time.sleep(0.25)


def query(client: httpx.Client, promql: str) -> list[dict]:
    answer = client.get("/api/v1/query", params={"query": promql}).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def scalar(client: httpx.Client, promql: str) -> float:
    result = query(client, promql)
    return float(result[0]["value"][1]) if result else 0.0


def test_prometheus_answers_a_models_request_rate(prometheus, gateway):
    up = wait_for(lambda: {s["metric"]["job"]: s["value"][1] for s in query(prometheus, "up")} == {
        "gateway": "1", "torchserve": "1"}, 20, "both targets should be scraped and up")
    assert up
    assert gateway.predict(MODEL).status_code == 200  # the series exists (and the model is loaded) ...
    series = f'zoo_requests_total{{model="{MODEL}",route="rest",code="200"}}'
    wait_for(lambda: query(prometheus, series), 10, "the gateway's request counter was never scraped")
    for _ in range(5):  # ... before the predictions whose rate we ask for
        assert gateway.predict(MODEL).status_code == 200
        time.sleep(0.2)

    rate = f'sum(rate(zoo_requests_total{{model="{MODEL}",code="200"}}[30s]))'
    value = wait_for(lambda: scalar(prometheus, rate), 15, f"{rate} stayed 0")
    assert value > 0
    increase = scalar(prometheus, f'sum(increase(zoo_requests_total{{model="{MODEL}",route="rest"}}[30s]))')
    assert increase >= 4  # extrapolated by Prometheus, so not exactly 5

    # TorchServe's own metrics come through the same Prometheus
    served = wait_for(lambda: scalar(prometheus, f'sum(ts_inference_requests_total{{model_name="{MODEL}"}})'), 15,
                      "TorchServe's inference counter was never scraped")
    assert served >= 6
