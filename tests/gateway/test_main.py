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


def test_serve_runs_torchserve_and_the_gateway_and_stops_both(model_store, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    shutil.copy(model_store / "resnet18.mar", store)
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
        deadline = time.monotonic() + 30  # TorchServe opens its gRPC port a moment after its HTTP one
        while (ready := httpx.get(f"{url}/readyz", timeout=10)).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.1)
        assert ready.json() == {"status": "ready", "backends": {"local": True}}
        assert (tmp_path / "torchserve" / "key_file.json").exists()  # token authorization is on
        assert httpx.get(f"http://127.0.0.1:{ports.inference}/ping", timeout=10).status_code in (400, 401)
        process.popen.send_signal(signal.SIGINT)  # Ctrl-C
        output = process.finish()
        assert "TorchServe stopped" in output and "1 already there" in output
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
