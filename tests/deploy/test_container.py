"""deploy/container.py and deploy/entrypoint.sh: what the image does in a container, run here for real.

The end-to-end tests start TorchServe through the image's entry point (role torchserve, as a Kubernetes pod
does, with a model group) and the nginx key proxy beside it (role keyproxy), then send predictions, gRPC and
management calls through the proxy, and restart TorchServe to see the proxy pick up the new tokens.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest

from tests.conftest import free_port, photo
from zooserve._proto import torchserve_pb2, torchserve_pb2_grpc

from .conftest import ROOT, container, debian_tool, torchserve_metrics

ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"


def store_with(tmp_path: Path, *names: str) -> Path:
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    for name in names:
        (store / f"{name}.mar").touch()
    return store


# --- which models a group loads ---

def test_a_group_loads_the_models_routed_to_it(tmp_path):
    store = store_with(tmp_path, "resnet18", "vgg19", "polynet", "resnet8_digits")
    env = {"ZOO_ROUTES__vgg19": "heavy", "ZOO_ROUTES__POLYNET": "heavy", "ZOO_ROUTES__resnet8_digits": "ab",
           "ZOO_DEFAULT_BACKEND": "light"}
    assert container.group_models(env | {"ZOO_GROUP": "heavy"}, store) == ["polynet", "vgg19"]
    assert container.group_models(env | {"ZOO_GROUP": "ab"}, store) == ["resnet8_digits"]
    # the default group also takes what nobody routes, so a new model is served without a routing change
    assert container.group_models(env | {"ZOO_GROUP": "light"}, store) == ["resnet18"]


def test_no_group_or_no_preload_starts_empty(tmp_path):
    store = store_with(tmp_path, "resnet18")
    assert container.group_models({}, store) is None  # compose: the gateway registers on first use
    assert container.group_models({"ZOO_GROUP": "light", "ZOO_DEFAULT_BACKEND": "light", "ZOO_TS_PRELOAD": "false"},
                                  store) is None


def test_a_route_without_an_archive_stops_the_container(tmp_path):
    store = store_with(tmp_path, "resnet18")
    with pytest.raises(SystemExit, match="no archive .* for routed model"):
        container.group_models({"ZOO_GROUP": "heavy", "ZOO_ROUTES__vgg19": "heavy"}, store)


def test_config_takes_ts_variables_and_the_group(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_MODEL_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("ZOO_TS_CONFIG", raising=False)
    path = container.write_config(tmp_path, {"TS_METRICS_ADDRESS": "http://0.0.0.0:9999"}, ["a", "b"])
    props = container.read_properties(path)
    repo = container.read_properties(ROOT / "zooserve" / "configs" / "torchserve.properties")
    assert props["metrics_address"] == "http://0.0.0.0:9999"
    assert props["load_models"] == "a.mar,b.mar" and props["model_store"] == str(tmp_path / "store")
    assert props["inference_address"] == repo["inference_address"]
    assert props["disable_token_authorization"] == "false"


def test_proxy_config_is_valid_nginx(tmp_path):
    nginx = debian_tool("nginx", "nginx")
    props = container.read_properties(ROOT / "k8s" / "base" / "torchserve" / "config.properties")
    conf = container.render_proxy({"inference": "inf-key", "management": "mgmt-key"}, props, tmp_path)
    text = conf.read_text()
    assert 'Authorization "Bearer inf-key"' in text and 'Authorization "Bearer mgmt-key"' in text
    assert "server 127.0.0.1:8080;" in text and "server 127.0.0.1:7070;" in text
    assert oct(conf.stat().st_mode & 0o777) == "0o600"  # it holds the tokens
    result = subprocess.run([nginx, "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_health_without_torchserve_is_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_TS_WORKDIR", str(tmp_path))
    assert "no key file" in container.check("torchserve", ready=False)
    assert container.check("nonsense", ready=False).startswith("unknown role")


def test_container_variables_are_not_gateway_settings():
    """The roles' ZOO_* variables share the gateway's prefix: none may be a gateway setting too."""
    settings = pytest.importorskip("zooserve.gateway.settings")
    assert not {v[4:].lower() for v in container.CONTAINER_VARIABLES} & set(settings.Settings.model_fields)


def test_entrypoint_runs_other_commands():
    result = subprocess.run([str(ENTRYPOINT), sys.executable, "-c", "print('hello')"], capture_output=True, text=True)
    assert result.stdout.strip() == "hello"
    result = subprocess.run([str(ENTRYPOINT)], env={**os.environ, "ZOO_ROLE": "nonsense"}, capture_output=True,
                            text=True)
    assert result.returncode == 64 and "unknown ZOO_ROLE" in result.stderr


# --- end to end: TorchServe and its key proxy, as in a Kubernetes pod ---

MODELS = ("squeezenet1_0", "resnet8_digits")


class Pod:
    """TorchServe (role torchserve) and the key proxy (role keyproxy), started through the entry point."""

    def __init__(self, tmp: Path):
        from zooserve.store.build import ArchiveOptions, build_archive

        self.store = tmp / "store"
        for name in MODELS:
            build_archive(name, self.store, ArchiveOptions())
        ports = {k: free_port() for k in ("inference", "management", "metrics", "grpc", "grpc_management",
                                          "proxy", "proxy_management", "proxy_grpc")}
        self.ports = ports
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            **os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "ZOO_TS_WORKDIR": str(tmp / "torchserve"), "ZOO_MODEL_STORE": str(self.store),
            "ZOO_GROUP": "ab", "ZOO_DEFAULT_BACKEND": "light",
            **{f"ZOO_ROUTES__{name}": "ab" for name in MODELS},
            "TS_INFERENCE_ADDRESS": f"http://127.0.0.1:{ports['inference']}",
            "TS_MANAGEMENT_ADDRESS": f"http://127.0.0.1:{ports['management']}",
            "TS_METRICS_ADDRESS": f"http://127.0.0.1:{ports['metrics']}",
            "TS_GRPC_INFERENCE_PORT": str(ports["grpc"]), "TS_GRPC_MANAGEMENT_PORT": str(ports["grpc_management"]),
            "ZOO_PROXY_DIR": str(tmp / "proxy"), "ZOO_PROXY_INFERENCE_PORT": str(ports["proxy"]),
            "ZOO_PROXY_MANAGEMENT_PORT": str(ports["proxy_management"]),
            "ZOO_PROXY_GRPC_PORT": str(ports["proxy_grpc"]),
        }
        self.tmp = tmp
        self.torchserve: subprocess.Popen | None = None
        self.proxy: subprocess.Popen | None = None

    def start(self, role: str) -> subprocess.Popen:
        log = open(self.tmp / f"{role}.log", "ab")
        return subprocess.Popen([str(ENTRYPOINT), role], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def health(self, role: str, ready: bool = False) -> str | None:
        argv = ["health", "--ready"] if ready else ["health"]
        result = subprocess.run([sys.executable, str(ROOT / "deploy" / "container.py"), *argv],
                                env={**self.env, "ZOO_ROLE": role}, capture_output=True, text=True)
        return None if result.returncode == 0 else result.stderr.strip()

    def wait(self, role: str, ready: bool = False, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while (problem := self.health(role, ready)) is not None:
            if time.monotonic() > deadline:
                logs = (self.tmp / f"{role}.log").read_text(errors="replace")[-3000:]
                raise TimeoutError(f"{role} not healthy after {timeout:.0f} s: {problem}\n{logs}")
            time.sleep(1)

    def start_torchserve(self) -> None:
        self.torchserve = self.start("torchserve")
        self.wait("torchserve", ready=True)

    @staticmethod
    def stop(process: subprocess.Popen | None) -> None:
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)  # the process group: Java and its Python workers too
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def pod(tmp_path_factory):
    debian_tool("nginx", "nginx")
    pod = Pod(tmp_path_factory.mktemp("pod"))
    try:
        pod.proxy = pod.start("keyproxy")  # first, as kubelet may: it waits for TorchServe's key file
        pod.start_torchserve()
        pod.wait("keyproxy")
        yield pod
    finally:
        pod.stop(pod.proxy)
        pod.stop(pod.torchserve)


def proxy(pod: Pod, port: str = "proxy") -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{pod.ports[port]}", timeout=120, trust_env=False)


def predict(pod: Pod, model: str) -> httpx.Response:
    with proxy(pod) as client:
        return client.post(f"/predictions/{model}", content=photo("chelsea.jpg"),
                           headers={"Content-Type": "application/octet-stream"})


@pytest.mark.e2e
def test_torchserve_itself_still_wants_its_token(pod):
    response = httpx.get(f"http://127.0.0.1:{pod.ports['inference']}/ping", trust_env=False)
    assert response.status_code in (400, 401)
    config = container.read_properties(Path(pod.env["ZOO_TS_WORKDIR"]) / "config.properties")
    assert config["load_models"] == ",".join(f"{m}.mar" for m in sorted(MODELS))


@pytest.mark.e2e
@pytest.mark.parametrize("model", MODELS)
def test_predictions_through_the_proxy(pod, model):
    response = predict(pod, model)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == model


@pytest.mark.e2e
def test_grpc_through_the_proxy(pod):
    messages = torchserve_pb2
    services = torchserve_pb2_grpc
    with grpc.insecure_channel(f"127.0.0.1:{pod.ports['proxy_grpc']}") as channel:
        stub = services.InferenceAPIsServiceStub(channel)
        request = messages.PredictionsRequest(model_name="squeezenet1_0", input={"data": photo("chelsea.jpg")})
        reply = stub.Predictions(request, timeout=120)
    assert json.loads(reply.prediction)["model"] == "squeezenet1_0"


@pytest.mark.e2e
def test_proxy_passes_only_what_the_gateway_uses(pod):
    with proxy(pod, "proxy_management") as management:
        listed = management.get("/models").json()["models"]
        assert sorted(m["modelName"] for m in listed) == sorted(MODELS)
        assert management.get("/models/squeezenet1_0").json()[0]["workers"][0]["status"] == "READY"
        assert management.get("/token", params={"type": "inference"}).status_code == 404
        assert management.put("/models/squeezenet1_0", params={"min_worker": 3}).status_code == 403
    with proxy(pod) as inference:
        assert inference.get("/predictions/squeezenet1_0").status_code == 403
        assert inference.get("/api-description").status_code == 404


@pytest.mark.e2e
def test_proxy_follows_new_tokens_after_a_torchserve_restart(pod):
    keys = container.read_keys(Path(pod.env["ZOO_TS_WORKDIR"]))
    pod.stop(pod.torchserve)
    pod.start_torchserve()
    assert container.read_keys(Path(pod.env["ZOO_TS_WORKDIR"])) != keys
    pod.wait("keyproxy", timeout=30)  # the proxy reloads nginx with the new tokens
    assert predict(pod, "squeezenet1_0").status_code == 200
    assert "tokens changed; nginx reloaded" in (pod.tmp / "keyproxy.log").read_text()


@pytest.mark.e2e
def test_torchserve_exports_the_metrics_the_dashboard_expects(pod):
    """The TorchServe names the dashboard and alerts check against (its metrics.yaml) are what it really serves."""
    assert predict(pod, "squeezenet1_0").status_code == 200
    text = httpx.get(f"http://127.0.0.1:{pod.ports['metrics']}/metrics", trust_env=False).text
    served = {line.split("{")[0].split()[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert {"ts_inference_requests_total", "ts_inference_latency_microseconds", "ts_queue_latency_microseconds",
            "CPUUtilization", "MemoryUtilization"} <= served
    assert served <= torchserve_metrics()  # GPU metrics only appear on a GPU


@pytest.mark.e2e
def test_one_failing_model_does_not_fail_the_liveness_check(pod, tmp_path):
    """A model whose worker keeps dying makes TorchServe's /ping answer 500; the liveness check (which would
    restart the whole group) still passes, because the frontend answers and serves the other models."""
    handler = tmp_path / "broken_handler.py"
    handler.write_text("raise RuntimeError('this worker fails on purpose')\n")
    # TorchServe counts a model unhealthy once its worker has failed for maxRetryTimeoutInSec (default 300 s)
    config = tmp_path / "model-config.yaml"
    config.write_text("minWorkers: 1\nmaxWorkers: 1\nmaxRetryTimeoutInSec: 5\n")
    subprocess.run([str(Path(sys.executable).parent / "torch-model-archiver"), "--model-name", "broken",
                    "--version", "1.0", "--handler", str(handler), "--config-file", str(config),
                    "--export-path", str(pod.store)], check=True)
    keys = container.read_keys(Path(pod.env["ZOO_TS_WORKDIR"]))
    management = httpx.Client(base_url=f"http://127.0.0.1:{pod.ports['management']}", timeout=60, trust_env=False,
                              headers={"Authorization": f"Bearer {keys['management']}"})
    ping = f"http://127.0.0.1:{pod.ports['inference']}/ping"
    try:
        registered = management.post("/models", params={"url": "broken.mar", "initial_workers": 1,
                                                        "synchronous": "false"})
        assert registered.status_code in (200, 202), registered.text
        deadline = time.monotonic() + 60
        while httpx.get(ping, headers={"Authorization": f"Bearer {keys['inference']}"},
                        trust_env=False).status_code != 500:
            assert time.monotonic() < deadline, "TorchServe's /ping never reported the failing worker"
            time.sleep(1)
        assert pod.health("torchserve") is None and pod.health("keyproxy") is None
        assert predict(pod, "squeezenet1_0").status_code == 200  # the group's models are still served
    finally:
        management.delete("/models/broken")
        management.close()
