"""TorchServe's token authorization: on in every configuration we deploy, and enforced by a real TorchServe.

A request to the inference or management API (HTTP or gRPC) without a token, with a wrong one, or with the
other API's token is refused, and has no effect; the gateway, which reads the key file, is served. Which
configuration each deployment runs is checked in test_deploy_configs.py.
"""

from __future__ import annotations

import json

import grpc
import pytest

from tests.conftest import photo
from tests.gateway.conftest import backend_for
from zooserve._proto import torchserve_pb2, torchserve_pb2_grpc

from .conftest import MODEL, registered, workers

REFUSED = (400, 401, 403)  # TorchServe 0.12 answers a refused token with 400 and InvalidKeyException
MANAGEMENT_GRPC = "/org.pytorch.serve.grpc.management.ManagementAPIsService/"


@pytest.fixture(scope="module")
def served(torchserve, management) -> str:
    """The model, registered with one worker (with the right token: the refusals below must be about tokens)."""
    keys = torchserve.keys()
    response = management.request("POST", "/models", keys.management,
                                  params={"url": f"{MODEL}.mar", "synchronous": "true", "initial_workers": "1"})
    assert response.status_code in (200, 409), response.text
    return MODEL


def bad_tokens(torchserve, api: str) -> dict[str, dict[str, str]]:
    """Authorization headers TorchServe must refuse on ``api`` ("inference" or "management")."""
    keys = torchserve.keys()
    other = keys.management if api == "inference" else keys.inference
    right = getattr(keys, api)
    return {
        "none": {},
        "wrong": {"Authorization": "Bearer 0123456789abcdef"},
        "other API's": {"Authorization": f"Bearer {other}"},
        "bare scheme": {"Authorization": "Bearer"},
        "not bearer": {"Authorization": f"Basic {right}"},
        "truncated": {"Authorization": f"Bearer {right[:-1]}"},
    }


def assert_refused(response, what: str) -> None:
    assert response.status_code in REFUSED, f"{what}: {response.status_code} {response.text[:200]}"
    assert "InvalidKeyException" in response.text or response.status_code in (401, 403), what


def test_inference_api_refuses_bad_tokens(torchserve, inference, served):
    for name, headers in bad_tokens(torchserve, "inference").items():
        assert_refused(inference.request("GET", "/ping", headers=headers), f"/ping, {name} token")
        response = inference.request("POST", f"/predictions/{served}", headers=headers, content=photo("chelsea.jpg"))
        assert_refused(response, f"/predictions, {name} token")
    # the same requests with the right token are served: what was refused was the token
    assert inference.request("GET", "/ping", torchserve.keys().inference).status_code == 200
    response = inference.request("POST", f"/predictions/{served}", torchserve.keys().inference,
                                 content=photo("chelsea.jpg"))
    assert response.status_code == 200 and response.json()["model"] == served


def test_management_api_refuses_bad_tokens_and_nothing_changes(torchserve, management, served):
    before = registered(torchserve, management), workers(torchserve, management, served)
    for name, headers in bad_tokens(torchserve, "management").items():
        calls = [("GET", "/models", {}), ("GET", f"/models/{served}", {}),
                 ("POST", "/models", {"params": {"url": f"{served}.mar", "model_name": "intruder"}}),
                 ("PUT", f"/models/{served}", {"params": {"min_worker": "3"}}),
                 ("DELETE", f"/models/{served}", {}),
                 ("GET", "/token", {"params": {"type": "inference"}})]  # rotating the keys
        for method, path, kwargs in calls:
            assert_refused(management.request(method, path, headers=headers, **kwargs), f"{method} {path}, {name}")
    # nothing was registered, scaled or unloaded
    assert (registered(torchserve, management), workers(torchserve, management, served)) == before


def test_keys_are_random_and_distinct(torchserve):
    keys = torchserve.keys()
    assert keys.inference != keys.management and min(len(keys.inference), len(keys.management)) >= 8


def grpc_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token is not None else ()


def test_grpc_inference_refuses_bad_tokens(torchserve, served):
    messages = torchserve_pb2
    services = torchserve_pb2_grpc
    keys = torchserve.keys()
    request = messages.PredictionsRequest(model_name=served, input={"data": photo("chelsea.jpg")})
    with grpc.insecure_channel(f"127.0.0.1:{torchserve.ports.grpc_inference}") as channel:
        stub = services.InferenceAPIsServiceStub(channel)
        for token in (None, "0123456789abcdef", keys.management):
            with pytest.raises(grpc.RpcError) as refused:
                stub.Predictions(request, metadata=grpc_metadata(token), timeout=60)
            assert refused.value.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
        reply = stub.Predictions(request, metadata=grpc_metadata(keys.inference), timeout=60)
    assert json.loads(reply.prediction)["model"] == served


def test_grpc_management_refuses_bad_tokens(torchserve, served):
    keys = torchserve.keys()
    with grpc.insecure_channel(f"127.0.0.1:{torchserve.ports.grpc_management}") as channel:
        # ListModelsRequest{limit: 100} as bytes (field 1, varint): TorchServe's management proto is not compiled here
        list_models, request = channel.unary_unary(MANAGEMENT_GRPC + "ListModels"), b"\x08\x64"
        for token in (None, "0123456789abcdef", keys.inference):
            with pytest.raises(grpc.RpcError) as refused:
                list_models(request, metadata=grpc_metadata(token), timeout=30)
            assert refused.value.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
        assert served.encode() in list_models(request, metadata=grpc_metadata(keys.management), timeout=30)


def test_the_gateway_is_served_with_the_keys_it_reads(gateway, served):
    response = gateway.predict(served)
    assert response.status_code == 200, response.text


def test_a_gateway_with_wrong_keys_is_refused(start_gateway, torchserve, tmp_path, served):
    """The gateway's access is the key file and nothing else: other keys, and TorchServe turns it away."""
    (tmp_path / "key_file.json").write_text(json.dumps(
        {"management": {"key": "wrongmanagement"}, "inference": {"key": "wronginference"}}))
    with start_gateway(backend_for(torchserve, key_dir=tmp_path)) as gateway:
        response = gateway.predict(served)
    assert response.status_code == 503 and response.json()["error"]["code"] == "backend_unavailable", response.text
