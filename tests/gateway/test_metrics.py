"""GET /metrics: Prometheus conventions checked by promtool, and the series a request leaves behind."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import photo
from zooserve._proto import zooserve_pb2 as pb


def test_metrics_pass_promtool(gateway):
    assert gateway.predict("resnet18").status_code == 200
    assert gateway.predict("resnt18").status_code == 404
    promtool = shutil.which("promtool")
    if promtool is None:  # `make test` installs it (Debian prometheus); a bare run must not pass silently
        pytest.fail("promtool not found: install the Debian package prometheus (scripts/system-deps.sh prometheus)")
    response = gateway.http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    checked = subprocess.run([promtool, "check", "metrics"], input=response.content, capture_output=True)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def test_a_request_is_counted_by_model_route_and_code(gateway):
    before = {route: gateway.metric("zoo_requests_total", model="resnet18", route=route, code="200")
              for route in ("rest", "grpc")}
    durations = gateway.metric("zoo_request_duration_seconds_count", model="resnet18")
    backend = gateway.metric("zoo_backend_duration_seconds_count", model="resnet18")
    bodies = gateway.metric("zoo_request_body_bytes_count")
    assert gateway.predict("resnet18").status_code == 200
    gateway.stub.Predict(pb.PredictRequest(model="resnet18", image=photo("chelsea.jpg")), timeout=300)
    for route in ("rest", "grpc"):
        assert gateway.metric("zoo_requests_total", model="resnet18", route=route, code="200") == before[route] + 1
    assert gateway.metric("zoo_request_duration_seconds_count", model="resnet18") == durations + 2
    assert gateway.metric("zoo_backend_duration_seconds_count", model="resnet18") == backend + 2
    assert gateway.metric("zoo_request_body_bytes_count") == bodies + 2
    assert gateway.metric("zoo_requests_in_flight", model="resnet18") == 0


def test_unknown_names_share_one_label(gateway):
    before = gateway.metric("zoo_requests_total", model="unknown", route="rest", code="404")
    for name in ("nosuch1", "nosuch2", "nosuch3"):
        assert gateway.predict(name).status_code == 404
    assert gateway.metric("zoo_requests_total", model="unknown", route="rest", code="404") == before + 3
    assert 'model="nosuch1"' not in gateway.http.get("/metrics").text
