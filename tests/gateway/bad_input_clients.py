"""One prediction over each of the gateway's four protocols, answered as one shape (``Answer``), and the check
that an answer is the documented refusal. Used by the bad-input corpus tests (test_bad_inputs*.py).

The clients are the plain ones a caller uses: httpx for REST and v2 REST, the generated stubs over a gRPC
channel for ZooService and GRPCInferenceService (the gateway's own messages: tritonclient's cannot share
this process with them, see v2_grpc_client.py). A name that is not UTF-8 cannot be put in a protobuf
string field, so for those the request is encoded by hand.
"""

from __future__ import annotations

import json
import struct
import time
from typing import Any, NamedTuple

import grpc

from tests.conftest import photo
from tests.reliability.corpus_requests import Expect
from zooserve._proto import open_inference_pb2 as v2pb
from zooserve._proto import zooserve_pb2 as pb

GRPC_STATUS = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
               413: grpc.StatusCode.INVALID_ARGUMENT, 415: grpc.StatusCode.INVALID_ARGUMENT,
               422: grpc.StatusCode.INVALID_ARGUMENT}
LEAKS = ("Traceback", 'File "', "site-packages", "/zooserve/gateway/")  # what an error must never show
TIMEOUT_S = 120


class Answer(NamedTuple):
    status: Any  # the HTTP status, or the gRPC status code
    code: str | None  # the error code (REST body, or gRPC trailing metadata zoo-error-code)
    message: str  # the error message, or "" for a success
    text: str  # everything a client sees of the answer, to look for leaks
    predictions: int = 0  # classes answered, on a success


def path_segment(name: bytes) -> str:
    """Every byte but letters and digits percent-encoded: dots and slashes arrive as the client typed them."""
    return "".join(chr(b) if chr(b).isascii() and chr(b).isalnum() else f"%{b:02X}" for b in name)


def _prefixed(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def _with_name(message: Any, field_number: int, name: bytes) -> bytes:
    """The message's bytes with a string field set to raw bytes (the parser keeps a field's last value)."""
    assert len(name) < 128  # one-byte length
    return message.SerializeToString() + bytes([field_number << 3 | 2, len(name)]) + name


def _http_answer(response) -> Answer:
    if response.status_code == 200:
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
        count = len(body["predictions"]) if body and "predictions" in body else 0
        return Answer(200, None, "", response.text, count)
    error = response.json()["error"]
    if isinstance(error, str):  # the v2 binding: {"error": "<message>"}
        return Answer(response.status_code, None, error, response.text)
    return Answer(response.status_code, error["code"], error["message"], response.text)


def _grpc_answer(call) -> Answer:
    try:
        reply = call()
    except grpc.RpcError as error:
        code = dict(error.trailing_metadata() or ()).get("zoo-error-code")
        return Answer(error.code(), code, error.details() or "", f"{error.details()} {error.trailing_metadata()}")
    return Answer(grpc.StatusCode.OK, None, "", str(reply), _count(reply))


def _count(reply: Any) -> int:
    if isinstance(reply, pb.PredictResponse):
        return len(reply.predictions)
    shape = {o.name: list(o.shape) for o in reply.outputs}["labels"]
    return shape[1]


def rest(gateway, image: bytes, model: bytes = b"resnet18", version: str = "", topk: Any = None,
         content_type: str = "application/octet-stream") -> Answer:
    path = f"/predict/{path_segment(model)}" + (f"/{path_segment(version.encode())}" if version else "")
    params = {"topk": str(topk)} if topk is not None else None
    return _http_answer(gateway.http.post(path, content=image, params=params, headers={"Content-Type": content_type}))


def grpc_zoo(gateway, image: bytes, model: bytes = b"resnet18", version: str = "", topk: Any = None) -> Answer:
    fields = {"image": image, "version": version} | ({"topk": topk} if topk is not None else {})
    try:
        request: Any = pb.PredictRequest(model=model.decode(), **fields)
    except UnicodeDecodeError:
        request = _with_name(pb.PredictRequest(**fields), 1, model)
    if isinstance(request, bytes):
        raw = gateway.channel.unary_unary("/zooserve.v1.ZooService/Predict",
                                          response_deserializer=pb.PredictResponse.FromString)
        return _grpc_answer(lambda: raw(request, timeout=TIMEOUT_S))
    return _grpc_answer(lambda: gateway.stub.Predict(request, timeout=TIMEOUT_S))


def v2_rest(gateway, image: bytes, model: bytes = b"resnet18", version: str = "", topk: Any = None) -> Answer:
    """The binary tensor data form, as tritonclient sends an image."""
    path = f"/v2/models/{path_segment(model)}" + (f"/versions/{path_segment(version.encode())}" if version else "")
    elements = _prefixed(image)
    request = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                           "parameters": {"binary_data_size": len(elements)}}],
               "outputs": [{"name": "labels", "parameters": {"binary_data": False}}]}
    if topk is not None:
        request["parameters"] = {"topk": topk}
    head = json.dumps(request).encode()
    response = gateway.http.post(f"{path}/infer", content=head + elements,
                                 headers={"Content-Type": "application/octet-stream",
                                          "Inference-Header-Content-Length": str(len(head))})
    if response.status_code == 200:
        labels = response.json()["outputs"][0]  # the one output asked for, as JSON
        return Answer(200, None, "", response.text, labels["shape"][1])
    return _http_answer(response)


def _parameter(value: Any) -> Any:
    kind = {bool: "bool_param", int: "int64_param", float: "double_param", str: "string_param"}[type(value)]
    return v2pb.InferParameter(**{kind: value})


def v2_grpc(gateway, image: bytes, model: bytes = b"resnet18", version: str = "", topk: Any = None) -> Answer:
    tensor = v2pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])
    fields = {"model_version": version, "inputs": [tensor], "raw_input_contents": [_prefixed(image)],
              "outputs": [v2pb.ModelInferRequest.InferRequestedOutputTensor(name="labels")]}
    if topk is not None:
        fields["parameters"] = {"topk": _parameter(topk)}
    try:
        request: Any = v2pb.ModelInferRequest(model_name=model.decode(), **fields)
    except UnicodeDecodeError:
        request = _with_name(v2pb.ModelInferRequest(**fields), 1, model)
    return v2_grpc_message(gateway, request)


def v2_grpc_message(gateway, request: Any) -> Answer:
    """ModelInfer with a message, or with bytes sent as they are."""
    serializer = None if isinstance(request, bytes) else v2pb.ModelInferRequest.SerializeToString
    call = gateway.channel.unary_unary("/inference.GRPCInferenceService/ModelInfer", request_serializer=serializer,
                                       response_deserializer=v2pb.ModelInferResponse.FromString)
    return _grpc_answer(lambda: call(request, timeout=TIMEOUT_S))


CLIENTS = {"rest": rest, "grpc": grpc_zoo, "v2_rest": v2_rest, "v2_grpc": v2_grpc}


def assert_refused(answer: Answer, expect: Expect, protocol: str) -> None:
    """The documented refusal: the status (or the gRPC code it maps to), the error code where the protocol
    carries one, a message starting as expected, and nothing of the gateway's insides."""
    grpc_like = protocol.endswith("grpc")
    assert answer.status == (GRPC_STATUS[expect.status] if grpc_like else expect.status), answer
    if protocol != "v2_rest" or answer.code is not None:  # v2 REST's own errors carry no code
        assert answer.code == expect.code, answer
    assert answer.message.startswith(expect.message), answer
    assert not any(leak in answer.text for leak in LEAKS), answer.text[:2000]


def assert_classified(answer: Answer, topk: int = 5) -> None:
    assert answer.status in (200, grpc.StatusCode.OK), answer
    assert answer.predictions == topk, answer


def default_image() -> bytes:
    return photo("chelsea.jpg")


def wait_until_loaded(gateway, model: str, timeout_s: float = 300) -> None:
    """Predicts until the model answers 200. A busy machine can take longer than a request's wait to load
    a model: the request gets 503 model_loading with Retry-After, the load goes on, and a retry finds it loaded."""
    deadline = time.monotonic() + timeout_s
    while (response := gateway.predict(model)).status_code == 503 and time.monotonic() < deadline:
        assert response.json()["error"]["code"] == "model_loading", response.text
        time.sleep(int(response.headers["Retry-After"]))
    assert response.status_code == 200, response.text
