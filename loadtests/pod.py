"""A TorchServe "pod" and a gateway as containers, and requests in flight across a signal: shared by
tests/deploy/test_images.py and loadtests/drain.py (which measures what each container does on SIGTERM).

The pod is TorchServe and its key proxy sharing one network namespace, as in Kubernetes; the gateway reaches
the proxy across a user-defined network. Every container runs as the deployments run it: the image's user,
a read-only root filesystem, no capabilities.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx

from .docker import ROOT, docker, published_port, remove, unique, wait_healthy
from .metrics import metric

LOCKED_DOWN = ("--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true")
WORKDIR = "/var/lib/zooserve/torchserve"  # TorchServe's working directory in the image (ZOO_TS_WORKDIR)
MODEL = "resnet18"  # loaded at start; on a CPU a few dozen requests queue behind it


@contextmanager
def running_pod(torchserve_image: str, gateway_image: str) -> Iterator[dict[str, str]]:
    """network, torchserve, keyproxy, gateway: their names, once all three are healthy; removed afterwards."""
    names = {k: unique(f"zooserve-test-{k}") for k in ("network", "state", "torchserve", "keyproxy", "gateway")}
    try:
        docker("network", "create", names["network"])
        docker("volume", "create", names["state"])
        state = f"{names['state']}:{WORKDIR}"
        # the pod's group "test" loads the model at start (the routing table, as a Kubernetes group reads it)
        docker("run", "-d", "--name", names["torchserve"], *LOCKED_DOWN, "--tmpfs", "/tmp:size=1g",
               "--network", names["network"], "--network-alias", "torchserve", "-v", state,
               "-e", "ZOO_GROUP=test", "-e", "ZOO_DEFAULT_BACKEND=none", "-e", f"ZOO_ROUTES__{MODEL}=test",
               "--stop-timeout", "60", torchserve_image)
        docker("run", "-d", "--name", names["keyproxy"], *LOCKED_DOWN, "--tmpfs", "/tmp:size=64m",
               "--network", f"container:{names['torchserve']}", "-v", f"{state}:ro", "-e", "ZOO_ROLE=keyproxy",
               torchserve_image)
        backend = {"inference_url": "http://torchserve:9080", "management_url": "http://torchserve:9081",
                   "grpc_address": "torchserve:9070", "key_dir": None}
        docker("run", "-d", "--name", names["gateway"], *LOCKED_DOWN, "--tmpfs", "/tmp:size=64m",
               "--network", names["network"], "-p", "127.0.0.1::8000", "-e", "ZOO_ROLE=gateway",
               "-e", f"ZOO_BACKENDS__LOCAL={json.dumps(backend)}", "-e", "ZOO_SHUTDOWN_GRACE_S=30",
               "--stop-timeout", "40", gateway_image)
        for name in ("torchserve", "keyproxy", "gateway"):
            wait_healthy(names[name])
        yield names
    finally:
        remove(names["gateway"], names["keyproxy"], names["torchserve"])
        docker("volume", "rm", "-f", names["state"], check=False)
        docker("network", "rm", names["network"], check=False)


def gateway_url(names: dict[str, str]) -> str:
    host, port = published_port(names["gateway"], 8000)
    return f"http://{host}:{port}"


def predict(url: str, timeout: float = 120) -> httpx.Response:
    return httpx.post(f"{url}/predict/{MODEL}", content=(ROOT / "tests" / "data" / "chelsea.jpg").read_bytes(),
                      headers={"Content-Type": "image/jpeg"}, timeout=timeout, trust_env=False)


def across_a_signal(url: str, stop, count: int = 32) -> tuple[int, list[int], float]:
    """`count` predictions at once; `stop()` as soon as every one of them has reached the gateway (a request
    still being sent when the signal lands would be refused, which is no drain failure), while most wait
    behind the model. (how many were unanswered when `stop()` was called, the status of every answer,
    seconds from the stop to the last answer)."""

    def one() -> tuple[float, float, int]:
        started = time.monotonic()
        status = predict(url).status_code
        return started, time.monotonic(), status

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(one) for _ in range(count)]
        give_up = time.monotonic() + 120
        # answered ones counted before the gauge is read: one ending in between is counted nowhere, never twice
        while sum(f.done() for f in futures) + _in_flight(url) < count:
            assert time.monotonic() < give_up, "the requests never all reached the gateway"
            time.sleep(0.005)
        stopped_at = time.monotonic()
        stop()
        results = [f.result() for f in futures]
    in_flight = sum(1 for started, ended, _ in results if started < stopped_at < ended)
    return in_flight, [status for _, _, status in results], max(ended for _, ended, _ in results) - stopped_at


def _in_flight(url: str) -> float:
    """The gateway's own count of MODEL's requests in flight (its /metrics)."""
    return metric(httpx.get(f"{url}/metrics", timeout=10, trust_env=False).text, "zoo_requests_in_flight", model=MODEL)
