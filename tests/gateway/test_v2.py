"""The Open Inference Protocol (KServe v2) on the gateway's REST and gRPC ports, driven by the clients people
use, tritonclient.http and tritonclient.grpc, in the process that runs the gateway, plus the JSON/base64 form
by hand. The answers are the same predictions as POST /predict."""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.conftest import photo
from tests.gateway import v2_grpc_client
from zooserve.gateway.v2 import protocol

OUTPUTS = ("probabilities", "labels", "indices")


@pytest.fixture(scope="module")
def triton(gateway):
    client = httpclient.InferenceServerClient(gateway.url.removeprefix("http://"), network_timeout=300,
                                              connection_timeout=60)
    yield client
    client.close()


@pytest.fixture(scope="module")
def expected(gateway):
    """What POST /predict answers for chelsea.jpg, top 3."""
    response = gateway.predict("resnet18", params={"topk": 3})
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def image_input(data: bytes) -> httpclient.InferInput:
    tensor = httpclient.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=np.object_))
    return tensor


def test_health_and_server_metadata(triton, gateway):
    assert triton.is_server_live()
    deadline = time.monotonic() + 60  # the first ping of a fresh gateway can miss its 2 s while TorchServe warms up
    while not triton.is_server_ready():
        assert time.monotonic() < deadline, "the gateway never became ready"
        time.sleep(0.2)
    assert triton.get_server_metadata() == {"name": "zooserve", "version": protocol.SERVER_VERSION,
                                            "extensions": ["binary_tensor_data"]}
    assert gateway.http.get("/v2/health/live").json() == {"live": True}


def test_model_metadata_and_readiness(triton):
    assert triton.get_model_metadata("resnet18") == {
        "name": "resnet18", "versions": ["1.0"], "platform": "pytorch_torchserve",
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, -1]},
                    {"name": "labels", "datatype": "BYTES", "shape": [-1, -1]},
                    {"name": "indices", "datatype": "INT64", "shape": [-1, -1]}],
    }
    assert triton.get_model_metadata("resnet18", model_version="1.0")["versions"] == ["1.0"]
    assert triton.is_model_ready("fractalnet_cifar100")  # servable: registered on first use
    assert triton.is_model_ready("resnet18", model_version="1.0")


def test_versions_match_the_archives(catalog_snapshot):
    from zooserve.gateway.catalog import Catalog
    from zooserve.store.build import ARCHIVE_VERSION

    assert Catalog(catalog_snapshot).archive_version == ARCHIVE_VERSION  # what v2 answers as the versions


@pytest.mark.parametrize("binary", [True, False], ids=["binary-outputs", "json-outputs"])
def test_infer_with_tritonclient_http(triton, expected, binary):
    # the image always travels as binary data: tritonclient puts BYTES in JSON only when they are UTF-8
    outputs = [httpclient.InferRequestedOutput(name, binary_data=binary) for name in OUTPUTS]
    result = triton.infer("resnet18", [image_input(photo("chelsea.jpg"))], outputs=outputs,
                          request_id="rest-1", parameters={"topk": 3})
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == ("resnet18", "1.0", "rest-1")
    probabilities, labels, indices = (result.as_numpy(name) for name in OUTPUTS)
    assert probabilities.dtype == np.float32 and indices.dtype == np.int64 and labels.shape == (1, 3)
    assert indices[0].tolist() == [p["index"] for p in expected]
    assert [label.decode() if isinstance(label, bytes) else label for label in labels[0]] == [
        p["label"] for p in expected]
    assert probabilities[0].tolist() == pytest.approx([p["score"] for p in expected], rel=1e-6)


def test_infer_without_outputs_answers_all_three_in_binary(triton, expected):
    result = triton.infer("resnet18", [image_input(photo("chelsea.png"))])  # default topk 5
    assert {o["name"]: o["shape"] for o in result.get_response()["outputs"]} == {n: [1, 5] for n in OUTPUTS}
    assert result.as_numpy("indices")[0, :3].tolist() == [p["index"] for p in expected]


def test_infer_a_batch_of_two(triton):
    tensor = httpclient.InferInput("image", [2], "BYTES")
    tensor.set_data_from_numpy(np.array([photo("chelsea.jpg"), photo("rocket.jpg")], dtype=np.object_))
    result = triton.infer("resnet18", [tensor], parameters={"topk": 2})
    assert result.as_numpy("probabilities").shape == (2, 2)


def test_infer_json_with_base64_by_hand(gateway, expected):
    body = {"id": "by-hand", "parameters": {"topk": 3},
            "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                        "data": [base64.b64encode(photo("chelsea.jpg")).decode()]}]}
    response = gateway.http.post("/v2/models/resnet18/infer", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == "by-hand" and answer["model_name"] == "resnet18"
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["labels"] == {"name": "labels", "datatype": "BYTES", "shape": [1, 3],
                                 "data": [p["label"] for p in expected]}
    assert outputs["indices"]["data"] == [p["index"] for p in expected]


def test_v2_requests_are_counted_under_their_route(gateway):
    before = gateway.metric("zoo_requests_total", model="resnet18", route="v2_rest", code="200")
    body = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                        "data": [base64.b64encode(photo("chelsea.jpg")).decode()]}]}
    assert gateway.http.post("/v2/models/resnet18/infer", json=body).status_code == 200
    assert gateway.metric("zoo_requests_total", model="resnet18", route="v2_rest", code="200") == before + 1


def assert_triton_error(call, status: str, *words: str) -> None:
    with pytest.raises(InferenceServerException) as raised:
        call()
    assert raised.value.status() == status
    assert all(word in raised.value.message() for word in words), raised.value.message()


def test_errors_reach_tritonclient_http_with_their_status(triton):
    image = photo("chelsea.jpg")
    assert_triton_error(lambda: triton.infer("resnt18", [image_input(image)]), "404", "resnet18")
    assert_triton_error(lambda: triton.get_model_metadata("resnt18"), "404", "resnet18")
    assert_triton_error(lambda: triton.get_model_metadata("resnet18", model_version="9.9"), "404", "9.9")
    assert_triton_error(lambda: triton.infer("resnet18", [image_input(b"this is not an image")]), "415")
    assert_triton_error(lambda: triton.infer("resnet18", [image_input(image)],
                                             outputs=[httpclient.InferRequestedOutput("logits")]), "400", "logits")
    assert_triton_error(lambda: triton.infer("resnet18", [image_input(image)], parameters={"topk": 0}), "400")
    wrong = httpclient.InferInput("pixels", [1, 3], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
    assert_triton_error(lambda: triton.infer("resnet18", [wrong]), "400", "pixels")
    assert not triton.is_model_ready("resnt18")


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"", 400, "empty"),
    (b"{not json", 400, "JSON"),
    (json.dumps({"inputs": []}).encode(), 400, "one input"),
    (json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": ["%%%"]}]}).encode(),
     400, "base64"),
    (json.dumps({"inputs": [{"name": "image", "shape": [2], "datatype": "BYTES", "data": ["AAAA"]}]}).encode(),
     400, "shape"),
    (json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                             "data": [base64.b64encode(b"GIF89a-but-not-really").decode()]}]}).encode(), 415, ""),
])
def test_errors_are_json_with_the_right_status(gateway, body, status, words):
    response = gateway.http.post("/v2/models/resnet18/infer", content=body,
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    answer = response.json()
    assert set(answer) == {"error"} and isinstance(answer["error"], str) and words in answer["error"]


def test_unknown_model_error_is_json(gateway):
    response = gateway.http.get("/v2/models/resnt18")
    assert response.status_code == 404 and "resnet18" in response.json()["error"]
    assert gateway.http.get("/v2/models/resnt18/ready").status_code == 404


def test_tritonclient_grpc(gateway, expected):
    """ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer, and the status
    codes of the errors, as tritonclient.grpc sees them."""
    seen = v2_grpc_client.observe(gateway.grpc_target, photo("chelsea.jpg"))
    assert seen["live"] and seen["ready"] and seen["model_ready"]
    assert seen["server_metadata"] == {"name": "zooserve", "version": protocol.SERVER_VERSION,
                                       "extensions": ["binary_tensor_data"]}
    metadata = seen["metadata"]
    assert (metadata["name"], metadata["versions"], metadata["platform"]) == ("resnet18", ["1.0"],
                                                                              "pytorch_torchserve")
    assert metadata["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": ["-1"]}]
    assert [o["name"] for o in metadata["outputs"]] == list(OUTPUTS)

    infer = seen["infer"]["ok"]
    assert (infer["model_name"], infer["model_version"], infer["id"]) == ("resnet18", "1.0", "grpc-1")
    assert infer["dtypes"] == ["float32", "object", "int64"]
    assert infer["indices"] == [[p["index"] for p in expected]]
    assert infer["labels"] == [[p["label"] for p in expected]]
    assert infer["probabilities"][0] == pytest.approx([p["score"] for p in expected], rel=1e-6)
    assert len(seen["infer_default"]["ok"]["indices"][0]) == 5

    assert seen["unknown_model"]["status"] == "StatusCode.NOT_FOUND" and "resnet18" in seen["unknown_model"]["message"]
    assert seen["unknown_model_ready"]["status"] == "StatusCode.NOT_FOUND"
    assert seen["not_an_image"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert seen["unknown_output"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "logits" in seen["unknown_output"]["message"]


def test_proto_is_wire_compatible_with_tritons():
    """Every message and field of proto/inference/grpc_service.proto has the name, number, type and label of
    tritonclient's published definition, and every method is one of its service's (both loaded in this
    process: ours live in a descriptor pool of their own)."""
    from google.protobuf import descriptor_pb2
    from tritonclient.grpc import service_pb2 as tritons_module

    from zooserve._proto import open_inference_pb2 as our_module

    def fields(message, prefix: str) -> dict:
        out = {f"{prefix}{message.name}.{f.name}": [f.number, f.type, f.label, f.type_name] for f in message.field}
        for nested in message.nested_type:
            out.update(fields(nested, f"{prefix}{message.name}."))
        return out

    def summary(module) -> dict:
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        service = proto.service[0]
        return {"package": proto.package,
                "fields": {k: v for message in proto.message_type for k, v in fields(message, "").items()},
                "methods": {f"{service.name}.{m.name}": [m.input_type, m.output_type] for m in service.method}}

    ours, tritons = summary(our_module), summary(tritons_module)
    assert ours["package"] == tritons["package"] == "inference"
    assert len(ours["methods"]) == 6 and ours["methods"].items() <= tritons["methods"].items()
    assert len(ours["fields"]) > 40 and ours["fields"].items() <= tritons["fields"].items()


def test_server_reflection_lists_the_v2_service(gateway):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    assert "inference.GRPCInferenceService" in ProtoReflectionDescriptorDatabase(gateway.channel).get_services()
