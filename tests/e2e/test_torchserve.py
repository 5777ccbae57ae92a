"""End to end: archives built by zooserve.store, served by a real TorchServe, over REST and TorchServe's gRPC."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest

from tests.conftest import photo, torchserve_ports
from zooserve._proto import torchserve_pb2, torchserve_pb2_grpc
from zooserve.store.build import ArchiveOptions, build_archive
from zooserve.torchserve import TorchServe

pytestmark = pytest.mark.e2e

# representative: library CNNs, a CIFAR model, our own implementations, and the largest network
MODELS = ["resnet18", "fractalnet_cifar100", "squeezenet_bypass", "igcv1_l100m2_ident", "amoebanet_a_n6_f448"]


@pytest.fixture(scope="module")
def torchserve(tmp_path_factory):
    store = tmp_path_factory.mktemp("model_store")
    for name in MODELS:
        build_archive(name, store, ArchiveOptions())
    server = TorchServe(tmp_path_factory.mktemp("torchserve"), store, torchserve_ports())
    with server:
        yield server


@pytest.fixture(scope="module")
def management(torchserve):
    headers = {"Authorization": f"Bearer {torchserve.keys().management}"}
    with httpx.Client(base_url=torchserve.management_url, headers=headers, timeout=600) as client:
        yield client


@pytest.fixture(scope="module")
def inference(torchserve):
    headers = {"Authorization": f"Bearer {torchserve.keys().inference}"}
    with httpx.Client(base_url=torchserve.inference_url, headers=headers, timeout=600) as client:
        yield client


@pytest.fixture(scope="module")
def grpc_stub(torchserve):
    messages = torchserve_pb2
    services = torchserve_pb2_grpc
    with grpc.insecure_channel(f"127.0.0.1:{torchserve.ports.grpc_inference}") as channel:
        yield messages, services.InferenceAPIsServiceStub(channel)


def register(management: httpx.Client, name: str) -> None:
    response = management.post("/models", params={"url": f"{name}.mar", "initial_workers": 1, "synchronous": "true"})
    assert response.status_code == 200, response.text


def unregister(management: httpx.Client, name: str) -> None:
    assert management.delete(f"/models/{name}").status_code == 200


def predict_rest(inference: httpx.Client, name: str, body: bytes, **headers) -> httpx.Response:
    return inference.post(
        f"/predictions/{name}", content=body, headers={"Content-Type": "application/octet-stream", **headers}
    )


def test_token_authorization_is_on(torchserve):
    assert httpx.get(f"{torchserve.inference_url}/ping").status_code in (400, 401)
    assert httpx.get(f"{torchserve.management_url}/models").status_code in (400, 401)


@pytest.mark.parametrize("name", MODELS)
def test_model_answers_over_rest_and_grpc(management, inference, grpc_stub, torchserve, name):
    register(management, name)
    try:
        response = predict_rest(inference, name, photo("chelsea.jpg"), **{"X-Topk": "3"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == name and body["weights"] == "fixed-seed" and len(body["predictions"]) == 3

        bad = predict_rest(inference, name, b"GIF89a but not really")
        assert bad.status_code == 415 and bad.json()["error"]["code"] == "not_an_image"

        messages, stub = grpc_stub
        metadata = [("authorization", f"Bearer {torchserve.keys().inference}")]
        reply = stub.Predictions(
            messages.PredictionsRequest(model_name=name, input={"data": photo("rocket.jpg")}), metadata=metadata,
            timeout=600,
        )
        grpc_body = json.loads(reply.prediction)
        assert grpc_body["model"] == name and len(grpc_body["predictions"]) == 5
    finally:
        unregister(management, name)


def test_grpc_bad_image_answers_the_error_and_worker_survives(management, grpc_stub, torchserve, inference):
    # TorchServe's gRPC API drops the per-request status a handler sets: the error arrives as the body
    register(management, "resnet18")
    try:
        messages, stub = grpc_stub
        metadata = [("authorization", f"Bearer {torchserve.keys().inference}")]
        reply = stub.Predictions(messages.PredictionsRequest(model_name="resnet18", input={"data": b"junk"}),
                                 metadata=metadata, timeout=60)
        assert json.loads(reply.prediction)["error"]["code"] == "not_an_image"
        assert predict_rest(inference, "resnet18", photo("chelsea.jpg")).status_code == 200
    finally:
        unregister(management, "resnet18")


def test_prometheus_metrics_are_exported(torchserve):
    response = httpx.get(f"{torchserve.metrics_url}/metrics")
    assert response.status_code == 200
    assert "# TYPE" in response.text and "ts_inference_requests_total" in response.text
