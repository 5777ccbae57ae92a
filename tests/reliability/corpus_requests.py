"""Requests that are bad for reasons other than their image, with the answer each must get.

``bad_calls`` are predictions with a bad model name, version, topk or size, sent the same way over every
protocol that can carry them (REST, gRPC, and the Open Inference Protocol's REST and gRPC bindings); the
other lists are bad in ways only one protocol can be: REST's content types and multipart forms, v2 REST's
JSON and binary data, v2 gRPC's tensors. tests/gateway/test_bad_inputs*.py send them.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import photo
from zooserve._proto import open_inference_pb2 as v2pb

PROTOCOLS = ("rest", "grpc", "v2_rest", "v2_grpc")
MAX_BODY = 20 * 1024 * 1024  # ZOO_MAX_BODY_BYTES' default, which the tests' gateway runs with


@dataclass(frozen=True)
class Expect:
    status: int  # the HTTP status; gRPC answers the status code the gateway maps it to
    code: str | None  # the error code (v2 REST answers none)
    message: str  # the start of the error message


@dataclass(frozen=True)
class BadCall:
    """A prediction of chelsea.jpg (unless ``image``) that is bad for its name, version, topk or size."""

    name: str
    expect: Expect
    model: bytes = b"resnet18"  # bytes: a client can send a name that is not UTF-8
    version: str = ""
    topk: Any = None  # an int, or what only some protocols can carry (a string, a float)
    image: bytes | None = None
    # per protocol: another answer (its way of refusing differs), or None where it cannot carry the call
    per_protocol: dict[str, Expect | None] = field(default_factory=dict)

    def expected(self, protocol: str) -> Expect | None:
        return self.per_protocol.get(protocol, self.expect)


def _unknown(name: str) -> Expect:
    return Expect(404, "unknown_model", f"unknown model {name!r}")


def _topk(value: str) -> Expect:
    return Expect(400, "bad_topk", f"topk must be a whole number from 1 to 1000, not '{value}'")


NO_ROUTE = Expect(404, "no_such_route", "not found: POST /")
UNDECODABLE = Expect(400, "bad_request", "malformed request")  # gRPC: a string field that is not UTF-8
BAD_VERSION = Expect(400, "bad_version", "bad version")
V2_TOPK = Expect(400, "bad_topk", "parameter topk must be an integer")
TOO_LARGE = Expect(413, "body_too_large", "body too large")


def bad_calls() -> list[BadCall]:
    only_rest_and_v2 = {"grpc": None}  # ZooService's topk is a uint32: it cannot be negative
    return [
        BadCall("unknown model", _unknown("resnet1800"), model=b"resnet1800"),
        BadCall("overlong model name", Expect(404, "unknown_model", "unknown model: names are at most 100"),
                model=b"a" * 1000),
        BadCall("non-UTF-8 model name", Expect(404, "unknown_model", "unknown model"), model=b"\xff\xfe",
                per_protocol={"grpc": UNDECODABLE, "v2_grpc": UNDECODABLE}),
        # REST: /predict/../x is the route /predict/{model}/{version} with the model '..'
        BadCall("path-like model name", _unknown("../x"), model=b"../x",
                per_protocol={"rest": _unknown(".."), "v2_rest": NO_ROUTE}),
        BadCall("path traversal in model name", _unknown("../../etc/passwd"), model=b"../../etc/passwd",
                per_protocol={"rest": NO_ROUTE, "v2_rest": NO_ROUTE}),
        BadCall("dot-dot model name", _unknown(".."), model=b".."),
        BadCall("NUL in model name", _unknown("resnet18\x00"), model=b"resnet18\x00"),
        BadCall("header injection in model name", _unknown("resnet18\r\nX-Injected: 1"),
                model=b"resnet18\r\nX-Injected: 1"),
        BadCall("empty model name", _unknown(""), model=b"", per_protocol={"rest": None, "v2_rest": None}),
        BadCall("unknown version", Expect(404, "unknown_version", "model 'resnet18' has no version '9.9'"),
                version="9.9"),
        BadCall("malformed version", BAD_VERSION, version="v 1;",
                per_protocol={"rest": Expect(422, "invalid_request", "invalid request: path.version")}),
        BadCall("path-like version", BAD_VERSION, version="../1.0",
                per_protocol={"rest": NO_ROUTE, "v2_rest": NO_ROUTE}),
        BadCall("overlong version", BAD_VERSION, version="1" * 200,
                per_protocol={"rest": Expect(422, "invalid_request", "invalid request: path.version")}),
        BadCall("topk zero", _topk("0"), topk=0),
        BadCall("topk over the classes", _topk("1001"), topk=1001),
        BadCall("topk at uint32's maximum", _topk(str(2**32 - 1)), topk=2**32 - 1),
        BadCall("topk negative", _topk("-3"), topk=-3, per_protocol=only_rest_and_v2),
        BadCall("topk not a number", V2_TOPK, topk="abc",
                per_protocol={"rest": Expect(422, "invalid_request", "invalid request: query.topk"), "grpc": None}),
        BadCall("topk fractional", V2_TOPK, topk=1.5,
                per_protocol={"rest": Expect(422, "invalid_request", "invalid request: query.topk"), "grpc": None}),
        BadCall("topk boolean", V2_TOPK, topk=True, per_protocol={"rest": None, "grpc": None}),
        BadCall("oversize body", TOO_LARGE, image=b"\xff\xd8\xff" + bytes(MAX_BODY)),
    ]


# --- REST only: (name, method, path, httpx keyword arguments, status, code, message start) ---

def _multipart(*parts: tuple[str, str | None, bytes], boundary: str = "zoo") -> dict[str, Any]:
    """A multipart body by hand (clients refuse to build broken ones): parts of (field, filename, bytes)."""
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return {"content": body + f"--{boundary}--\r\n".encode(),
            "headers": {"Content-Type": f"multipart/form-data; boundary={boundary}"}}


def _chunks(size: int):
    """A body without Content-Length (chunked): the cap must hold while it streams."""
    chunk = bytes(1024 * 1024)
    for _ in range(size // len(chunk) + 1):
        yield chunk


def rest_requests() -> list[tuple]:
    jpeg = photo("chelsea.jpg")
    unsupported = "unsupported content type"
    return [
        ("wrong method", "GET", "/predict/resnet18", {}, 405, "method_not_allowed",
         "method not allowed: GET /predict/resnet18"),
        ("text content type", "POST", "/predict/resnet18", {"headers": {"Content-Type": "text/plain"}}, 415,
         "unsupported_content_type", f"{unsupported} 'text/plain'"),
        ("json content type", "POST", "/predict/resnet18", {"headers": {"Content-Type": "application/json"}}, 415,
         "unsupported_content_type", f"{unsupported} 'application/json'"),
        ("url-encoded form", "POST", "/predict/resnet18",
         {"headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415, "unsupported_content_type",
         f"{unsupported} 'application/x-www-form-urlencoded'"),
        ("malformed multipart", "POST", "/predict/resnet18",
         {"content": b"--xyz\r\nnot a part", "headers": {"Content-Type": "multipart/form-data; boundary=xyz"}},
         400, "bad_multipart", "malformed multipart body"),
        ("multipart without a boundary", "POST", "/predict/resnet18",
         {"headers": {"Content-Type": "multipart/form-data"}}, 400, "bad_multipart", "malformed multipart body"),
        ("multipart without an image field", "POST", "/predict/resnet18", _multipart(("picture", "a.jpg", jpeg)),
         400, "missing_image", "multipart form without a file field 'image'"),
        ("multipart image as a text field", "POST", "/predict/resnet18", _multipart(("image", None, b"abc")), 400,
         "missing_image", "multipart form without a file field 'image'"),
        ("multipart with an empty image", "POST", "/predict/resnet18", _multipart(("image", "a.jpg", b"")), 400,
         "empty_body", "empty body"),
        ("multipart with too many files", "POST", "/predict/resnet18",
         _multipart(*[(f"f{i}", f"{i}.jpg", b"x") for i in range(5)], ("image", "a.jpg", jpeg)), 400,
         "bad_multipart", "malformed multipart body: Too many files"),
        ("multipart with too many fields", "POST", "/predict/resnet18",
         _multipart(*[(f"f{i}", None, b"x") for i in range(17)], ("image", "a.jpg", jpeg)), 400,
         "bad_multipart", "malformed multipart body: Too many fields"),
        ("oversize chunked body", "POST", "/predict/resnet18", {"content": _chunks(MAX_BODY)}, 413,
         "body_too_large", "body too large: more than the limit"),
        ("topk empty", "POST", "/predict/resnet18", {"params": {"topk": ""}}, 422, "invalid_request",
         "invalid request: query.topk"),
    ]


# --- v2 REST only: (name, body bytes, extra headers, status, message start) ---

def v2_body(image: bytes | None = None, **changes: Any) -> dict[str, Any]:
    """A JSON inference request with the image as base64; ``changes`` replace its fields (None removes one),
    ``input_*`` fields of its one input."""
    tensor = {"name": "image", "datatype": "BYTES", "shape": [1],
              "data": [base64.b64encode(photo("chelsea.jpg") if image is None else image).decode()]}
    request: dict[str, Any] = {"inputs": [tensor]}
    for key, value in changes.items():
        target, key = (tensor, key.removeprefix("input_")) if key.startswith("input_") else (request, key)
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return request


def v2_binary(elements: bytes, size: int | None = None, **changes: Any) -> tuple[bytes, dict[str, str]]:
    """The binary tensor data form: JSON, then ``elements`` (already length-prefixed) as the input's data."""
    request = v2_body(input_data=None, input_parameters={"binary_data_size": len(elements) if size is None
                                                          else size}, **changes)
    head = json.dumps(request).encode()
    return head + elements, {"Inference-Header-Content-Length": str(len(head))}


def _prefixed(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def v2_rest_requests() -> list[tuple]:
    jpeg = photo("chelsea.jpg")
    elements = _prefixed(jpeg)
    head = json.dumps(v2_body(input_data=None, input_parameters={"binary_data_size": len(elements)})).encode()

    def js(request: Any) -> bytes:
        return json.dumps(request).encode()

    return [
        ("empty body", b"", {}, 400, "empty request"),
        ("malformed JSON", b'{"inputs": [', {}, 400, "the request is not valid JSON"),
        ("JSON that is not UTF-8", b'{"id": "\xff\xfe"}', {}, 400, "the request is not valid JSON"),
        ("JSON array", b"[1, 2]", {}, 400, "the request must be a JSON object"),
        ("deeply nested JSON", b"[" * 100_000 + b"]" * 100_000, {}, 400, "the request is not valid JSON"),
        ("JSON integer of 5000 digits", b'{"id": ' + b"7" * 5000 + b"}", {}, 400, "the request is not valid JSON"),
        ("data nested deeper than any shape", js(v2_body(input_data=[[[[base64.b64encode(jpeg).decode()]]]])), {},
         400, "the data of 'image' nests deeper"),
        ("no inputs", js({"inputs": []}), {}, 400, "expected exactly one input ('image'), got 0"),
        ("missing inputs", js({"id": "x"}), {}, 400, "expected exactly one input ('image'), got 0"),
        ("inputs not a list", js({"inputs": {"name": "image"}}), {}, 400, "expected exactly one input"),
        ("two inputs", js({"inputs": v2_body()["inputs"] * 2}), {}, 400, "expected exactly one input ('image'), got 2"),
        ("input not an object", js({"inputs": ["image"]}), {}, 400, "an input must be a JSON object"),
        ("wrong input name", js(v2_body(input_name="pixels")), {}, 400, "unknown input 'pixels'"),
        ("wrong datatype", js(v2_body(input_datatype="FP32")), {}, 400, "input 'image' must be BYTES"),
        ("wrong shape", js(v2_body(input_shape=[2])), {}, 400, "input 'image' has shape [2] but 1 element(s)"),
        ("shape of three dimensions", js(v2_body(input_shape=[1, 1, 1])), {}, 400, "input 'image' has shape"),
        ("shape of strings", js(v2_body(input_shape=["1"])), {}, 400, "an input's shape must be a list of integers"),
        ("missing data", js(v2_body(input_data=None)), {}, 400, "input 'image' has neither data nor"),
        ("data not base64", js(v2_body(input_data=["%%%"])), {}, 400, "an element of 'image' is not valid base64"),
        ("data as numbers", js(v2_body(input_data=[1, 2, 3], input_shape=[3])), {}, 400,
         "the elements of 'image' in JSON are base64 strings"),
        ("too many images", js(v2_body(input_data=["AAAA"] * 33, input_shape=[33])), {}, 400,
         "input 'image' must hold 1 to 32 images, not 33"),
        ("unknown output", js(v2_body(outputs=[{"name": "logits"}])), {}, 400, "unknown output 'logits'"),
        ("outputs not a list", js(v2_body(outputs={"name": "labels"})), {}, 400, "outputs must be a list of objects"),
        ("parameters not an object", js(v2_body(parameters=[1])), {}, 400, "parameters must be a JSON object"),
        ("unknown request parameter", js(v2_body(parameters={"sequence_id": 7})), {}, 400,
         "unknown parameter 'sequence_id'"),
        ("unknown input parameter", js(v2_body(input_parameters={"shared_memory_region": "r"})), {}, 400,
         "unknown parameter 'shared_memory_region' of input 'image'"),
        ("unknown output parameter", js(v2_body(outputs=[{"name": "labels", "parameters": {"classification": 3}}])),
         {}, 400, "unknown parameter 'classification' of output 'labels'"),
        ("negative timeout", js(v2_body(parameters={"timeout": -5})), {}, 400, "parameter timeout must be a positive"),
        ("header length not a number", head + elements, {"Inference-Header-Content-Length": "ten"}, 400,
         "bad Inference-Header-Content-Length 'ten'"),
        ("header length in superscript digits", head + elements, {"Inference-Header-Content-Length": b"\xb2"}, 400,
         "bad Inference-Header-Content-Length"),
        ("header length past the body", head + elements, {"Inference-Header-Content-Length": str(10**9)}, 400,
         "bad Inference-Header-Content-Length"),
        ("header length cutting the JSON", head + elements, {"Inference-Header-Content-Length": str(len(head) - 3)},
         400, "the request is not valid JSON"),
        ("binary_data_size larger than the data", *v2_binary(elements, size=len(elements) + 10), 400,
         f"binary_data_size {len(elements) + 10} does not match"),
        ("binary_data_size smaller than the data", *v2_binary(elements, size=len(elements) - 10), 400,
         f"binary_data_size {len(elements) - 10} does not match"),
        ("binary_data_size not a number", *v2_binary(elements, size="all"), 400, "binary_data_size all does not"),
        ("element length past the data", *v2_binary(struct.pack("<I", 10**6) + jpeg[:100]), 400,
         "binary data of 'image' is shorter than its element of 1000000 bytes"),
        ("data ending inside a length", *v2_binary(elements + b"\x01\x00"), 400,
         "binary data of 'image' ends inside an element's 4-byte length"),
        ("compressed body", js(v2_body()), {"Content-Encoding": "gzip"}, 415, "unsupported Content-Encoding 'gzip'"),
        ("oversize body", b"{" + b" " * (MAX_BODY * 4 // 3 + 1024 * 1024), {}, 413, "body too large"),
    ]


# --- v2 gRPC only: (name, ModelInferRequest or its raw bytes, status, code, message start) ---

def v2_request(image: bytes | None = None, **changes: Any) -> Any:
    """A ModelInferRequest for resnet18 with the image in raw_input_contents; ``changes`` are its fields."""
    tensor = v2pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])
    fields: dict[str, Any] = {"model_name": "resnet18", "inputs": [tensor],
                              "raw_input_contents": [_prefixed(photo("chelsea.jpg") if image is None else image)]}
    return v2pb.ModelInferRequest(**(fields | changes))


def _tensor(**fields: Any) -> Any:
    return v2pb.ModelInferRequest.InferInputTensor(**({"name": "image", "datatype": "BYTES", "shape": [1]} | fields))


def _output(name: str, **parameters: Any) -> Any:
    return v2pb.ModelInferRequest.InferRequestedOutputTensor(
        name=name, parameters={k: v2pb.InferParameter(**v) for k, v in parameters.items()})


def v2_grpc_requests() -> list[tuple]:
    jpeg = photo("chelsea.jpg")
    bad_tensor = "bad_tensor"
    return [
        ("no inputs", v2_request(inputs=[], raw_input_contents=[]), 400, bad_tensor,
         "expected exactly one input ('image'), got 0"),
        ("two inputs", v2_request(inputs=[_tensor(), _tensor()], raw_input_contents=[_prefixed(jpeg)] * 2), 400,
         bad_tensor, "expected exactly one input ('image'), got 2"),
        ("wrong input name", v2_request(inputs=[_tensor(name="pixels")]), 400, bad_tensor, "unknown input 'pixels'"),
        ("wrong datatype", v2_request(inputs=[_tensor(datatype="FP32")]), 400, bad_tensor,
         "input 'image' must be BYTES"),
        ("wrong shape", v2_request(inputs=[_tensor(shape=[2])]), 400, bad_tensor, "input 'image' has shape [2]"),
        ("no shape", v2_request(inputs=[_tensor(shape=[])]), 400, bad_tensor, "input 'image' has shape []"),
        ("more raw contents than inputs", v2_request(raw_input_contents=[_prefixed(jpeg)] * 2), 400, bad_tensor,
         "raw_input_contents must hold one entry per input"),
        ("element length past the data", v2_request(raw_input_contents=[struct.pack("<I", 10**6) + jpeg[:100]]),
         400, bad_tensor, "binary data of 'image' is shorter than its element of 1000000 bytes"),
        ("data ending inside a length", v2_request(raw_input_contents=[_prefixed(jpeg) + b"\x01"]), 400, bad_tensor,
         "binary data of 'image' ends inside an element's 4-byte length"),
        ("numbers instead of bytes", v2_request(raw_input_contents=[], inputs=[_tensor(
            contents=v2pb.InferTensorContents(fp32_contents=[1.0]))]), 400, bad_tensor,
         "input 'image' has shape [1] but 0 element(s)"),
        ("too many images", v2_request(inputs=[_tensor(shape=[33])], raw_input_contents=[_prefixed(jpeg) * 33]),
         400, bad_tensor, "input 'image' must hold 1 to 32 images, not 33"),
        ("unknown output", v2_request(outputs=[_output("logits")]), 400, bad_tensor, "unknown output 'logits'"),
        ("unknown request parameter", v2_request(parameters={"sequence_id": v2pb.InferParameter(int64_param=7)}),
         400, "bad_parameter", "unknown parameter 'sequence_id'"),
        ("unknown input parameter", v2_request(inputs=[_tensor(parameters={
            "shared_memory_region": v2pb.InferParameter(string_param="r")})]), 400, "bad_parameter",
         "unknown parameter 'shared_memory_region' of input 'image'"),
        ("unknown output parameter", v2_request(outputs=[_output("labels", classification={"int64_param": 3})]), 400,
         "bad_parameter", "unknown parameter 'classification' of output 'labels'"),
        ("negative timeout", v2_request(parameters={"timeout": v2pb.InferParameter(int64_param=-5)}), 400,
         "bad_request", "parameter timeout must be a positive"),
        ("truncated message", v2_request().SerializeToString()[:-7], 400, "bad_request", "malformed request"),
    ]
