"""The one error table (zooserve/gateway/errors.py): an error class new to every transport gets the status, the
gRPC code and the Retry-After of the class it extends, on REST (both of its paths), v2 REST, gRPC and v2 gRPC;
an error that knows when to come back (a model loading) sends its own Retry-After on all of them."""

from __future__ import annotations

import base64
import struct

import grpc
import pytest

from tests.conftest import photo
from tests.gateway.test_grpc import rpc_error
from zooserve._proto import open_inference_pb2 as v2_pb
from zooserve._proto import open_inference_pb2_grpc as v2_grpc
from zooserve._proto import zooserve_pb2 as pb
from zooserve.gateway.errors import BackendUnavailable, GatewayError, Unprocessable


class ClosedForMaintenance(BackendUnavailable):  # named in no transport: 503, UNAVAILABLE, Retry-After
    default_code = "closed_for_maintenance"


class TooBlurry(Unprocessable):  # 422, INVALID_ARGUMENT, no Retry-After
    default_code = "too_blurry"


@pytest.mark.parametrize(("error", "status", "code", "retry"), [
    (ClosedForMaintenance("closed for maintenance"), 503, grpc.StatusCode.UNAVAILABLE, True),
    (ClosedForMaintenance("closed for an hour", retry_after_s=3600), 503, grpc.StatusCode.UNAVAILABLE, True),
    (TooBlurry("too blurry to classify"), 422, grpc.StatusCode.INVALID_ARGUMENT, False),
], ids=["retryable", "own-retry-after", "client-error"])
def test_a_new_error_class_maps_on_every_transport(gateway, error: GatewayError, status, code, retry):
    core = gateway.server.gateway

    def fail(request, num_classes):
        raise error

    core._validate = fail  # this gateway's check of every prediction raises the new error
    try:
        retry_after = str(error.retry_after_s or core.settings.retry_after_s) if retry else None
        image = photo("chelsea.jpg")
        for path in ("/predict/resnet18", "/predict/resnet18?unused=1"):  # ahead of FastAPI, and through it
            answer = gateway.predict(path.removeprefix("/predict/"), body=image)
            assert (answer.status_code, answer.json()["error"]) == (
                status, {"code": error.code, "message": error.message}), path
            assert answer.headers.get("retry-after") == retry_after
        v2 = gateway.http.post("/v2/models/resnet18/infer", json={"inputs": [{
            "name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(image).decode()]}]})
        assert (v2.status_code, v2.json(), v2.headers.get("retry-after")) == (
            status, {"error": error.message}, retry_after)

        seen, details, metadata = rpc_error(gateway.stub.Predict, pb.PredictRequest(model="resnet18", image=image))
        assert (seen, details, metadata["zoo-error-code"], metadata.get("retry-after")) == (
            code, error.message, error.code, retry_after)
        tensor = v2_pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])
        request = v2_pb.ModelInferRequest(model_name="resnet18", inputs=[tensor],
                                          raw_input_contents=[struct.pack("<I", len(image)) + image])
        seen, details, metadata = rpc_error(v2_grpc.GRPCInferenceServiceStub(gateway.channel).ModelInfer, request)
        assert (seen, details, metadata.get("retry-after")) == (code, error.message, retry_after)
    finally:
        del core._validate
