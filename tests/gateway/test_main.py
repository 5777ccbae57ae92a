"""The commands themselves, as processes: ``python -m zooserve.gateway`` drains in-flight requests on
SIGTERM; ``python -m zooserve.serve`` runs TorchServe and the gateway together and stops both on Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest

from tests.conftest import free_port, photo, torchserve_ports
from zooserve._proto import zooserve_pb2 as pb
from zooserve._proto import zooserve_pb2_grpc as pb_grpc
from zooserve.gateway.settings import ROOT


class Process:
    """A child process whose output lines are collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.popen = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)} | env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} within {timeout} s:\n" + "".join(self.output)) from None
            self.output.append(line)
            if text in line:
                return

    def finish(self, timeout: float = 120) -> str:
        code = self.popen.wait(timeout)
        while not self.lines.empty():
            self.output.append(self.lines.get())
        assert code == 0, "".join(self.output)
        return "".join(self.output)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def backends_env(inference: str, management: str, grpc_address: str, key_dir: Path) -> str:
    return json.dumps({"local": {"inference_url": inference, "management_url": management,
                                 "grpc_address": grpc_address, "key_dir": str(key_dir)}})


def test_gateway_process_finishes_in_flight_requests_on_sigterm(torchserve, management):
    model = "fractalnet_cifar100"
    management.unload(model)  # the request in flight loads it: seconds
    rest_port, grpc_port = free_port(), free_port()
    env = {"ZOO_REST_PORT": str(rest_port), "ZOO_GRPC_PORT": str(grpc_port), "ZOO_BACKENDS": backends_env(
        torchserve.inference_url, torchserve.management_url, f"127.0.0.1:{torchserve.ports.grpc_inference}",
        torchserve.workdir)}
    process = Process(["-m", "zooserve.gateway"], env)
    try:
        process.wait_for("zooserve gateway ready")
        url = f"http://127.0.0.1:{rest_port}"
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(httpx.post, f"{url}/predict/{model}", content=photo("chelsea.jpg"), timeout=300)
            _wait_in_flight(url, model)
            process.popen.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # the listeners close at once...
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{url}/healthz", timeout=5)
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel, pytest.raises(grpc.RpcError) as caught:
                pb_grpc.ZooServiceStub(channel).Predict(pb.PredictRequest(model=model, image=b"x"), timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            answer = in_flight.result(timeout=300)  # ...and the request in flight is answered
        assert answer.status_code == 200 and answer.json()["timings"]["load_ms"] > 0
        assert "stopping: letting in-flight requests finish" in process.finish()
    finally:
        process.kill()


def _wait_in_flight(url: str, model: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while f'zoo_requests_in_flight{{model="{model}"}} 1.0' not in httpx.get(f"{url}/metrics").text:
        assert time.monotonic() < deadline, "the request never got in flight"
        time.sleep(0.05)


def test_serve_runs_torchserve_and_the_gateway_and_stops_both(model_store, tmp_path, catalog_snapshot):
    store = tmp_path / "store"
    store.mkdir()
    shutil.copy(model_store / "resnet18.mar", store)
    shutil.copy(catalog_snapshot, store)  # of the registry as it is: kept by a build of missing archives
    ports = torchserve_ports()
    rest_port, grpc_port = free_port(), free_port()
    env = {"ZOO_REST_PORT": str(rest_port), "ZOO_GRPC_PORT": str(grpc_port), "ZOO_BACKENDS": backends_env(
        f"http://127.0.0.1:{ports.inference}", f"http://127.0.0.1:{ports.management}",
        f"127.0.0.1:{ports.grpc_inference}", tmp_path / "torchserve")}
    process = Process(["-m", "zooserve.serve", "--store", str(store), "--models", "resnet18",
                       "--metrics-port", str(ports.metrics), "--grpc-management-port", str(ports.grpc_management)],
                      env)
    try:
        process.wait_for("Send requests to")
        url = f"http://127.0.0.1:{rest_port}"
        ready = httpx.get(f"{url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text  # the gateway's own readiness: its backends are reported
        deadline = time.monotonic() + 30  # each backend is pinged every few seconds
        while ready.json() != {"status": "ready", "backends": {"local": True}}:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.2)
            ready = httpx.get(f"{url}/readyz", timeout=10)
        assert (tmp_path / "torchserve" / "key_file.json").exists()  # token authorization is on
        assert httpx.get(f"http://127.0.0.1:{ports.inference}/ping", timeout=10).status_code in (400, 401)
        process.popen.send_signal(signal.SIGINT)  # Ctrl-C
        output = process.finish()
        assert "TorchServe stopped" in output and "1 already there" in output
        assert "catalog snapshot written" not in output  # the one beside the archives was current
        for port in (rest_port, ports.inference, ports.management):
            _wait_closed(port)
    finally:
        process.kill()


def _wait_closed(port: int, timeout: float = 30) -> None:
    # TorchServe's launcher exits first; its Java frontend may take a moment more to let go of the port
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        except httpx.ConnectError:
            return
        assert time.monotonic() < deadline, f"port {port} still answers"
        time.sleep(0.1)


# torch and the model libraries made unimportable: the gateway needs none of them (its catalog is a snapshot)
WITHOUT_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "torchvision", "timm", "pytorchcv"):
            raise ImportError(f"{name} is not importable in this process")

sys.meta_path.insert(0, NoTorch())
from zooserve.cli import main
sys.exit(main(["gateway"]))
"""


def test_gateway_serves_without_torch_and_logs_json_lines(torchserve, gateway):
    assert gateway.predict("resnet18").status_code == 200  # loaded: the process below only predicts
    rest_port, grpc_port = free_port(), free_port()
    env = {"ZOO_REST_PORT": str(rest_port), "ZOO_GRPC_PORT": str(grpc_port), "ZOO_LOG_FORMAT": "json",
           "ZOO_BACKENDS": backends_env(torchserve.inference_url, torchserve.management_url,
                                        f"127.0.0.1:{torchserve.ports.grpc_inference}", torchserve.workdir)}
    process = Process(["-c", WITHOUT_TORCH], env)
    try:
        process.wait_for("zooserve gateway ready")
        url = f"http://127.0.0.1:{rest_port}"
        answer = httpx.post(f"{url}/predict/resnet18", content=photo("chelsea.jpg"), timeout=120,
                            headers={"Content-Type": "image/jpeg", "X-Request-ID": "no-torch-1"})
        assert answer.status_code == 200, answer.text
        assert httpx.post(f"{url}/predict/resnt18", content=b"x", timeout=30).status_code == 404
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            reply = pb_grpc.ZooServiceStub(channel).Predict(
                pb.PredictRequest(model="resnet18", image=photo("chelsea.jpg"), request_id="no-torch-2"), timeout=120)
        assert reply.predictions
        process.popen.send_signal(signal.SIGTERM)
        output = process.finish()
    finally:
        process.kill()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # every line is JSON
    access = [line for line in lines if line["logger"] == "zooserve.access"]
    fields = {"request_id", "transport", "model", "variant", "status", "latency_ms"}
    assert all(fields <= set(line) and line["latency_ms"] > 0 for line in access), access
    seen = {(line["request_id"], line["transport"], line["model"], line["status"]) for line in access}
    assert {("no-torch-1", "rest", "resnet18", 200), ("no-torch-2", "grpc", "resnet18", "OK")} <= seen
    assert any(line[1:] == ("rest", "unknown", 404) for line in seen)  # the client's text is never written
    assert any("zooserve gateway ready" in line["message"] and line["level"] == "INFO" for line in lines)
