"""The Docker engine as the container tests use it: Debian's docker client, the images `make images` builds.

`make test` installs docker.io, starts dockerd (scripts/dockerd.sh) and builds the images before pytest runs;
a test run without them fails here with what to run, it is not skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
# the tags of `make images` (Makefile); ZOO_TEST_GATEWAY_IMAGE runs another image in the gateway's place
SLIM_GATEWAY_IMAGE = f"zooserve-gateway:{VERSION}"
GATEWAY_IMAGE = os.environ.get("ZOO_TEST_GATEWAY_IMAGE") or SLIM_GATEWAY_IMAGE
TORCHSERVE_IMAGE = f"zooserve-torchserve:{VERSION}-cpu"
# stand-ins for the third-party images of docker-compose.yml, built from Debian packages (tests/deploy/images)
STAND_INS = {"POSTGRES_IMAGE": "zooserve-local/postgres:15", "PROMETHEUS_IMAGE": "zooserve-local/prometheus:debian",
             "LOCUST_IMAGE": "zooserve-local/locust:" + re.search(
                 r"^locust==(\S+)", (ROOT / "requirements-dev.txt").read_text(), re.M).group(1)}


def client() -> str:
    """Debian's docker client (classic builder, the engine's API version), else the one on PATH."""
    found = "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else shutil.which("docker")
    if not found:
        pytest.fail("no docker client: `make test` installs docker.io (scripts/system-deps.sh)")
    return found


def docker(*args: str, check: bool = True, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([client(), *args], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])}... failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


def require_images(*images: str) -> None:
    if docker("info", check=False, timeout=30).returncode != 0:
        pytest.fail("the Docker engine is not running: `make test` starts it (scripts/dockerd.sh, as root)")
    missing = [i for i in images if docker("image", "inspect", i, check=False).returncode != 0]
    if missing:
        pytest.fail(f"images missing: {', '.join(missing)}; build them with `make images`")


def inspect(name: str) -> dict:
    return json.loads(docker("inspect", name).stdout)[0]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def published_port(container: str, port: int) -> tuple[str, int]:
    """(host address, host port) a container's port is published on."""
    (binding, *_) = inspect(container)["NetworkSettings"]["Ports"][f"{port}/tcp"]
    return binding["HostIp"], int(binding["HostPort"])


def wait_healthy(container: str, timeout: float = 300) -> None:
    """Until Docker's HEALTHCHECK says healthy; the container's logs if it does not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = inspect(container)["State"]
        if state.get("Health", {}).get("Status") == "healthy":
            return
        if not state["Running"]:
            break
        time.sleep(1)
    logs = docker("logs", "--tail", "60", container, check=False)
    raise AssertionError(f"{container} not healthy: {inspect(container)['State']}\n{logs.stdout}{logs.stderr}")


def remove(*names: str) -> None:
    for name in names:
        docker("rm", "-f", "-v", name, check=False)
