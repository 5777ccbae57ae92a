"""The gRPC service with a client generated from proto/zooserve/v1/zooserve.proto: same answers and
errors as REST, mapped to status codes; the standard health service; server reflection."""

from __future__ import annotations

import difflib

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tests.conftest import photo
from zooserve._proto import zooserve_pb2 as pb
from zooserve.zoo import list_models

SERVICE = "zooserve.v1.ZooService"


def rpc_error(call, *args, **kwargs) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, timeout=300, **kwargs)
    error = caught.value
    return error.code(), error.details(), dict(error.trailing_metadata() or ())


def test_predict(gateway):
    request = pb.PredictRequest(model="resnet18", image=photo("chelsea.jpg"), topk=3, request_id="grpc-1")
    reply, call = gateway.stub.Predict.with_call(request, timeout=300)
    assert (reply.request_id, reply.model, reply.version, reply.weights, reply.pretrained, reply.label_set) == (
        "grpc-1", "resnet18", "1.0", "fixed-seed", False, "imagenet-1k")
    assert dict(call.trailing_metadata())["x-request-id"] == "grpc-1"
    rest = gateway.predict("resnet18", params={"topk": 3}).json()["predictions"]
    assert [(p.index, p.label, p.score) for p in reply.predictions] == [(p["index"], p["label"], p["score"])
                                                                        for p in rest]
    assert reply.timings.total_ms >= reply.timings.backend_ms > 0


def test_predict_default_topk_and_version(gateway):
    reply = gateway.stub.Predict(pb.PredictRequest(model="resnet18", version="1.0", image=photo("rocket.jpg")),
                                 timeout=300)
    assert len(reply.predictions) == 5 and len(reply.request_id) == 32


@pytest.mark.parametrize("fields, status, code, message", [
    ({"model": "resnt18"}, grpc.StatusCode.NOT_FOUND, "unknown_model", None),
    ({"version": "2.0"}, grpc.StatusCode.NOT_FOUND, "unknown_version", "model 'resnet18' has no version '2.0'"),
    ({"image": b"junk"}, grpc.StatusCode.INVALID_ARGUMENT, "not_an_image",
     "not an image: the body is not in any image format we read"),
    ({"image": b""}, grpc.StatusCode.INVALID_ARGUMENT, "empty_body", "empty body: send the image bytes"),
    ({"topk": 0}, grpc.StatusCode.INVALID_ARGUMENT, "bad_topk", "topk must be a whole number from 1 to 1000, not '0'"),
    ({"version": "../1"}, grpc.StatusCode.INVALID_ARGUMENT, "bad_version",
     "bad version '../1': letters, digits, '.', '_', '-' only"),
    ({"image": b"\xff" * (20 * 1024 * 1024 + 1)}, grpc.StatusCode.INVALID_ARGUMENT, "body_too_large",
     "body too large: 20971521 bytes > limit of 20971520 bytes"),
])
def test_predict_errors_map_to_status_codes(gateway, fields, status, code, message):
    request = pb.PredictRequest(**({"model": "resnet18", "image": photo("chelsea.jpg")} | fields))
    got_status, details, metadata = rpc_error(gateway.stub.Predict, request)
    if message is None:  # unknown model: the close matches, as REST names them
        matches = difflib.get_close_matches("resnt18", list_models(), n=3, cutoff=0.5)
        message = f"unknown model 'resnt18'; did you mean {', '.join(matches)}?"
    assert (got_status, details, metadata["zoo-error-code"]) == (status, message, code)
    assert len(metadata["x-request-id"]) == 32
    assert gateway.stub.Predict(pb.PredictRequest(model="resnet18", image=photo("chelsea.jpg")), timeout=300)


def test_list_and_get_models(gateway):
    models = gateway.stub.ListModels(pb.ListModelsRequest(), timeout=60).models
    assert [m.name for m in models] == list_models()
    model = gateway.stub.GetModel(pb.GetModelRequest(model="fractalnet_cifar100"), timeout=60)
    assert (model.label_set, model.num_classes, list(model.input_size), model.backend) == (
        "cifar-100", 100, [3, 32, 32], "local")
    assert model.paper.title and model.family == "fractalnet"
    rest = gateway.http.get("/models/fractalnet_cifar100").json()
    assert model.loaded == rest["loaded"] and model.heavy == rest["heavy"]
    assert model.HasField("seed_top1") == (rest["seed_top1"] is not None)
    status, details, metadata = rpc_error(gateway.stub.GetModel, pb.GetModelRequest(model="nosuch"))
    assert status == grpc.StatusCode.NOT_FOUND and metadata["zoo-error-code"] == "unknown_model"


def test_health_checking(gateway):
    health = health_pb2_grpc.HealthStub(gateway.channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status == serving
    assert health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10).status == serving
    with pytest.raises(grpc.RpcError) as caught:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10)
    assert next(watch).status == serving
    watch.cancel()


def test_server_reflection(gateway):
    database = ProtoReflectionDescriptorDatabase(gateway.channel)
    assert {SERVICE, "grpc.health.v1.Health"} <= set(database.get_services())
    service = database.FindFileContainingSymbol(SERVICE)
    methods = {m.name for s in service.service if s.name == "ZooService" for m in s.method}
    assert methods == {"Predict", "ListModels", "GetModel"}
