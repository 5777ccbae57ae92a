"""The two images, started for real: a TorchServe pod (TorchServe and its key proxy sharing one network
namespace, as in Kubernetes) and the gateway, on a user-defined network, locked down as the deployments run
them (non-root, read-only root filesystem, no capabilities). Predictions cross the network; SIGTERM drains
the gateway's requests in flight; TorchServe logs to stdout; the entry point refuses an insecure TorchServe.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import photo

from .docker import GATEWAY_IMAGE, SLIM_GATEWAY_IMAGE, TORCHSERVE_IMAGE, docker, inspect, published_port, remove
from .docker import require_images, unique, wait_healthy

pytestmark = pytest.mark.e2e
LOCKED_DOWN = ("--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true")
MODEL = "resnet18"
IN_FLIGHT = 12  # requests in flight when the gateway gets SIGTERM
WORKDIR = "/var/lib/zooserve/torchserve"  # TorchServe's working directory in the image (ZOO_TS_WORKDIR)


@pytest.fixture(scope="module")
def stack():
    """network, torchserve (+ keyproxy in its network namespace), gateway; their names."""
    require_images(GATEWAY_IMAGE, TORCHSERVE_IMAGE)
    names = {k: unique(f"zooserve-test-{k}") for k in ("network", "state", "torchserve", "keyproxy", "gateway")}
    try:
        docker("network", "create", names["network"])
        docker("volume", "create", names["state"])
        state = f"{names['state']}:{WORKDIR}"
        # the pod's group "test" loads resnet18 at start (the routing table, as a Kubernetes group reads it)
        docker("run", "-d", "--name", names["torchserve"], *LOCKED_DOWN, "--tmpfs", "/tmp:size=1g",
               "--network", names["network"], "--network-alias", "torchserve", "-v", state,
               "-e", "ZOO_GROUP=test", "-e", "ZOO_DEFAULT_BACKEND=none", "-e", f"ZOO_ROUTES__{MODEL}=test",
               TORCHSERVE_IMAGE)
        docker("run", "-d", "--name", names["keyproxy"], *LOCKED_DOWN, "--tmpfs", "/tmp:size=64m",
               "--network", f"container:{names['torchserve']}", "-v", f"{state}:ro", "-e", "ZOO_ROLE=keyproxy",
               TORCHSERVE_IMAGE)
        backend = {"inference_url": "http://torchserve:9080", "management_url": "http://torchserve:9081",
                   "grpc_address": "torchserve:9070", "key_dir": None}
        docker("run", "-d", "--name", names["gateway"], *LOCKED_DOWN, "--tmpfs", "/tmp:size=64m",
               "--network", names["network"], "-p", "127.0.0.1::8000", "-e", "ZOO_ROLE=gateway",
               "-e", f"ZOO_BACKENDS__LOCAL={json.dumps(backend)}", "-e", "ZOO_SHUTDOWN_GRACE_S=30",
               "--stop-timeout", "40", GATEWAY_IMAGE)
        for name in ("torchserve", "keyproxy", "gateway"):
            wait_healthy(names[name])
        yield names
    finally:
        remove(names["gateway"], names["keyproxy"], names["torchserve"])
        docker("volume", "rm", "-f", names["state"], check=False)
        docker("network", "rm", names["network"], check=False)


def gateway_url(stack) -> str:
    host, port = published_port(stack["gateway"], 8000)
    return f"http://{host}:{port}"


def predict(url: str, timeout: float = 120) -> httpx.Response:
    return httpx.post(f"{url}/predict/{MODEL}", content=photo("chelsea.jpg"),
                      headers={"Content-Type": "image/jpeg"}, timeout=timeout, trust_env=False)


def test_gateway_image_has_no_torch():
    require_images(SLIM_GATEWAY_IMAGE, TORCHSERVE_IMAGE)
    probe = "import importlib.util as u; print(u.find_spec('torch') is None, u.find_spec('PIL') is not None)"
    assert docker("run", "--rm", "--entrypoint", "python", SLIM_GATEWAY_IMAGE, "-c", probe).stdout.split() == [
        "True", "True"]
    store = docker("run", "--rm", "--entrypoint", "ls", SLIM_GATEWAY_IMAGE, "/app/model_store").stdout.split()
    assert all(name.endswith(".json") for name in store), store  # the catalog snapshot, no archives
    sizes = {i: int(docker("image", "inspect", "--format", "{{.Size}}", i).stdout)
             for i in (SLIM_GATEWAY_IMAGE, TORCHSERVE_IMAGE)}
    print(f"image sizes: {sizes}")
    assert sizes[SLIM_GATEWAY_IMAGE] < sizes[TORCHSERVE_IMAGE] / 2, sizes


def test_the_entrypoint_still_refuses_an_insecure_torchserve():
    require_images(TORCHSERVE_IMAGE)
    result = docker("run", "--rm", *LOCKED_DOWN, "--tmpfs", "/tmp", "--tmpfs", f"{WORKDIR}:uid=10001,gid=10001",
                    "-e", "TS_DISABLE_TOKEN_AUTHORIZATION=true", TORCHSERVE_IMAGE, check=False)
    assert result.returncode != 0 and "refusing to start TorchServe" in result.stderr + result.stdout


def test_prediction_crosses_the_network(stack):
    response = predict(gateway_url(stack))
    assert response.status_code == 200, response.text
    assert response.json()["model"] == MODEL and response.json()["predictions"]


def test_containers_run_locked_down(stack):
    for name in ("torchserve", "keyproxy", "gateway"):
        config = inspect(stack[name])
        assert config["Config"]["User"] == "10001:10001", name  # the images' USER
        assert config["HostConfig"]["ReadonlyRootfs"] and config["HostConfig"]["CapDrop"] == ["ALL"], name
        assert docker("exec", stack[name], "id", "-u").stdout.strip() == "10001", name
        touched = docker("exec", stack[name], "touch", "/app/written", check=False)
        assert touched.returncode != 0 and "Read-only file system" in touched.stderr, name


def test_torchserve_logs_to_stdout(stack):
    assert predict(gateway_url(stack)).status_code == 200
    logs = docker("logs", stack["torchserve"])
    text = logs.stdout + logs.stderr
    assert f"/predictions/{MODEL}" in text and "ACCESS_LOG" in text  # one access line per request
    assert "MODEL_LOG" in text  # the workers' output
    assert docker("exec", stack["torchserve"], "ls", f"{WORKDIR}/logs",
                  check=False).returncode != 0, "no log files in the working directory"


def test_sigterm_drains_the_requests_in_flight(stack):
    """SIGTERM while requests are in flight: every one of them is answered 200 before the gateway exits."""
    url = gateway_url(stack)
    assert predict(url).status_code == 200  # loaded and warm

    def one() -> tuple[float, float, int]:
        started = time.monotonic()
        status = predict(url).status_code
        return started, time.monotonic(), status

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        futures = [pool.submit(one) for _ in range(IN_FLIGHT)]
        time.sleep(0.3)  # all sent; the model answers a few at a time, so most are still waiting
        signal_at = time.monotonic()
        docker("kill", "--signal", "TERM", stack["gateway"])
        results = [f.result() for f in futures]
    in_flight = [r for r in results if r[0] < signal_at < r[1]]
    assert len(in_flight) >= IN_FLIGHT // 2, f"only {len(in_flight)} requests were in flight at SIGTERM"
    assert [r[2] for r in results] == [200] * IN_FLIGHT, "a request in flight was lost"
    docker("wait", stack["gateway"], timeout=60)
    assert inspect(stack["gateway"])["State"]["ExitCode"] == 0
    print(f"drain: {len(in_flight)} of {IN_FLIGHT} requests in flight at SIGTERM, all answered 200; the last "
          f"{max(r[1] for r in results) - signal_at:.2f} s after the signal")
