"""The two images, started for real: a TorchServe pod (TorchServe and its key proxy sharing one network
namespace, as in Kubernetes) and the gateway, on a user-defined network, locked down as the deployments run
them (non-root, read-only root filesystem, no capabilities). Predictions cross the network; SIGTERM drains
the gateway's requests in flight; TorchServe logs to stdout; the entry point refuses an insecure TorchServe.
"""

from __future__ import annotations

import pytest

from loadtests.docker import GATEWAY_IMAGE, SLIM_GATEWAY_IMAGE, TORCHSERVE_IMAGE, docker, inspect, require_images
from loadtests.pod import LOCKED_DOWN, MODEL, WORKDIR, across_a_signal, gateway_url, predict, running_pod

pytestmark = pytest.mark.e2e
IN_FLIGHT = 32  # requests sent together; the gateway gets SIGTERM once all have reached it


@pytest.fixture(scope="module")
def stack():
    require_images(GATEWAY_IMAGE, TORCHSERVE_IMAGE)
    with running_pod(TORCHSERVE_IMAGE, GATEWAY_IMAGE) as names:
        yield names


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
    in_flight, statuses, last = across_a_signal(url, lambda: docker("kill", "--signal", "TERM", stack["gateway"]),
                                                IN_FLIGHT)
    assert in_flight >= IN_FLIGHT // 4, f"only {in_flight} requests were in flight at SIGTERM"
    assert statuses == [200] * IN_FLIGHT, "a request in flight was lost"
    docker("wait", stack["gateway"], timeout=60)
    assert inspect(stack["gateway"])["State"]["ExitCode"] == 0
    print(f"drain: {in_flight} of {IN_FLIGHT} requests in flight at SIGTERM, all answered 200; the last "
          f"{last:.2f} s after the signal")
