"""Property-based fuzzing of the Open Inference Protocol's request parsing (zooserve/gateway/v2/): its helpers
(protocol.py) on arbitrary values, POST /v2/models/{name}/infer with arbitrary JSON (shaped like an inference
request or not), binary data and Inference-Header-Content-Length, and GRPCInferenceService.ModelInfer with
arbitrary messages and bytes. A malformed request is a typed 4xx, a valid one a valid parse (the dead
backend's typed 503/504, fuzz_gateway.py), never a 500 nor an error of another type.
"""

from __future__ import annotations

import base64
import json
import struct
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.reliability.fuzz_gateway import (
    FUZZ,
    assert_grpc_parsed_or_refused,
    assert_http_parsed_or_refused,
    fuzz_gateway,
    images,
    names,
    raw_grpc_call,
)
from zooserve._proto import open_inference_pb2 as v2pb
from zooserve.gateway.errors import GatewayError
from zooserve.gateway.v2 import protocol as v2

ANY_TEXT = st.text(st.characters(exclude_categories=[]), max_size=20)  # lone surrogates too: JSON can carry them
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | ANY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4),
    max_leaves=10,
)
DATATYPES = st.one_of(st.sampled_from(["BYTES", "FP32", "INT64", "bytes", ""]), ANY_TEXT)
PARAMETER_NAMES = st.one_of(st.sampled_from(["topk", "timeout", "binary_data_output", "binary_data",
                                             "binary_data_size", "priority", "sequence_id"]), ANY_TEXT)
SMALL_INTS = st.integers(-3, 40)


@pytest.fixture(scope="module")
def fuzz():
    with fuzz_gateway() as running:
        yield running


def refused_with_a_4xx(call) -> bool:
    """Runs ``call``: True when it raised a typed 4xx, False when it returned; anything else fails."""
    try:
        call()
    except GatewayError as error:
        assert 400 <= error.status < 500 and error.code and error.message, error
        return True
    return False


# --- the helpers ---

@FUZZ
@given(st.binary(max_size=300))
def test_decode_bytes_splits_or_refuses(raw):
    if not refused_with_a_4xx(lambda: v2.decode_bytes(raw)):
        assert v2.encode_bytes(v2.decode_bytes(raw)) == raw  # the elements are exactly what was sent


@FUZZ
@given(st.lists(st.binary(max_size=40), max_size=5))
def test_encode_and_decode_bytes_round_trip(items):
    assert v2.decode_bytes(v2.encode_bytes(items)) == items


@FUZZ
@given(name=st.one_of(st.just("image"), ANY_TEXT), datatype=DATATYPES,
       shape=st.lists(st.integers(-2**63, 2**63 - 1) | SMALL_INTS, max_size=4), count=SMALL_INTS,
       outputs=st.lists(st.sampled_from(v2.OUTPUTS) | ANY_TEXT, max_size=4), version=st.none() | ANY_TEXT,
       parameters=st.dictionaries(PARAMETER_NAMES, JSON, max_size=4))
def test_the_checks_pass_or_refuse(name, datatype, shape, count, outputs, version, parameters):
    if not refused_with_a_4xx(lambda: v2.check_input(name, datatype, shape, count)):
        assert (name, datatype, shape[0]) == ("image", "BYTES", count) and 1 <= count <= v2.MAX_BATCH
    if not refused_with_a_4xx(lambda: v2.requested_outputs(outputs)):
        assert set(v2.requested_outputs(outputs)) <= set(v2.OUTPUTS)
    refused_with_a_4xx(lambda: v2.version_of(version))
    if not refused_with_a_4xx(lambda: v2.topk_parameter(parameters)):
        assert v2.topk_parameter(parameters) is None or isinstance(v2.topk_parameter(parameters), int)
    if not refused_with_a_4xx(lambda: v2.timeout_parameter(parameters)):
        assert v2.timeout_parameter(parameters) is None or v2.timeout_parameter(parameters) > 0
    if not refused_with_a_4xx(lambda: v2.check_parameters(parameters, v2.REST_PARAMETERS["request"])):
        assert set(parameters) <= set(v2.REST_PARAMETERS["request"])


# --- POST /v2/models/{name}/infer ---

def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tensors() -> st.SearchStrategy[dict]:
    """Inputs shaped like the model's one (or not): every field optional, each valid or arbitrary."""
    return st.fixed_dictionaries({}, optional={
        "name": st.one_of(st.just("image"), ANY_TEXT),
        "datatype": DATATYPES,
        "shape": st.one_of(st.lists(SMALL_INTS, max_size=3), JSON),
        "data": st.one_of(st.lists(images().map(_b64) | ANY_TEXT, max_size=3), JSON),
        "parameters": st.one_of(st.fixed_dictionaries({}, optional={"binary_data_size": st.integers(-1, 4096)}),
                                st.dictionaries(PARAMETER_NAMES, JSON, max_size=3), JSON),
    })


def inference_requests() -> st.SearchStrategy[dict]:
    outputs = st.lists(st.fixed_dictionaries({}, optional={
        "name": st.sampled_from(v2.OUTPUTS) | ANY_TEXT,
        "parameters": st.dictionaries(PARAMETER_NAMES, JSON, max_size=3) | JSON,
    }), max_size=4)
    return st.fixed_dictionaries({}, optional={
        "id": ANY_TEXT,
        "inputs": st.one_of(st.lists(tensors(), max_size=2), JSON),
        "outputs": st.one_of(outputs, JSON),
        "parameters": st.one_of(st.dictionaries(PARAMETER_NAMES, JSON | SMALL_INTS, max_size=3), JSON),
    })


def _small_png() -> bytes:
    from PIL import Image

    from tests.conftest import encode

    return base64.b64encode(encode(Image.new("RGB", (8, 8), "white"), "PNG"))


# JSON that parsers choke on: nesting past the recursion limit, integers past int()'s 4300 digits or a float's
# range, NaN, lone surrogates, a byte order mark, another encoding, tensor data nested 900 deep
HOSTILE_JSON = [b"[" * 100_000 + b"]" * 100_000, b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                b'{"id": ' + b"9" * 5000 + b"}", b'{"parameters": {"topk": NaN, "timeout": Infinity}}',
                b'{"id": "\\ud800", "inputs": [{"name": "\\udfff"}]}', b"\xef\xbb\xbf{}",
                json.dumps({"inputs": []}).encode("utf-16"), b'{"inputs": [], "inputs": 1}',
                b'{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["' + _small_png()
                + b'"]}], "parameters": {"timeout": 1' + b"0" * 400 + b"}}",  # past what a float holds
                b'{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ' + b"[" * 900
                + b'"AAAA"' + b"]" * 900 + b"}]}"]
# header values int() refuses though str.isdigit() takes them, and other near-numbers
HOSTILE_LENGTHS = ["\u00b2", "\u00b9\u00b3", "0x10", "-1", " 12 ", "1e3", "1_0", "", "99999999999999999999"]


@st.composite
def infer_bodies(draw) -> tuple[bytes, dict[str, str]]:
    """JSON (valid, hostile or not JSON), sometimes with binary data after it and a header length that may lie."""
    request = draw(st.one_of(inference_requests(), JSON))
    head = draw(st.one_of(st.just(json.dumps(request).encode()), st.sampled_from(HOSTILE_JSON),
                          st.binary(max_size=64)))
    elements = b"".join(struct.pack("<I", len(i)) + i for i in draw(st.lists(images(), max_size=2)))
    binary = draw(st.sampled_from([b"", elements, elements[:-3], draw(st.binary(max_size=32))]))
    length = draw(st.one_of(st.none(), st.just(str(len(head))), SMALL_INTS.map(str), st.sampled_from(HOSTILE_LENGTHS),
                            st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=6)))
    return head + binary, {} if length is None else {"Inference-Header-Content-Length": length.encode("latin-1")}


@FUZZ
@given(model=names().filter(bool), version=st.one_of(st.none(), st.just("1.0"), st.text(min_size=1, max_size=70)),
       body=infer_bodies())
def test_infer_parses_or_refuses_with_a_typed_4xx(fuzz, model, version, body):
    content, headers = body
    path = f"/v2/models/{quote(model, safe='')}" + ("" if version is None else f"/versions/{quote(version, safe='')}")
    response = fuzz.run(fuzz.http.post(f"{path}/infer", content=content,
                                       headers={"Content-Type": "application/json"} | headers))
    assert_http_parsed_or_refused(response)


@pytest.mark.parametrize("body", HOSTILE_JSON, ids=range(len(HOSTILE_JSON)))
def test_infer_refuses_hostile_json(fuzz, body):
    """Each hostile body for certain (in the strategy above, a few of them would be drawn by luck)."""
    response = fuzz.run(fuzz.http.post("/v2/models/resnet18/infer", content=body,
                                       headers={"Content-Type": "application/json"}))
    assert_http_parsed_or_refused(response)


@pytest.mark.parametrize("length", HOSTILE_LENGTHS)
def test_infer_refuses_hostile_header_lengths(fuzz, length):
    elements = struct.pack("<I", 4) + b"\x89PNG"
    head = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                   "parameters": {"binary_data_size": len(elements)}}]}).encode()
    response = fuzz.run(fuzz.http.post("/v2/models/resnet18/infer", content=head + elements, headers={
        "Content-Type": "application/octet-stream", "Inference-Header-Content-Length": length.encode("latin-1")}))
    assert 400 <= response.status_code < 500, response.text  # the body is not an image: valid or not, a 4xx


# --- GRPCInferenceService.ModelInfer ---

def parameters() -> st.SearchStrategy[dict]:
    value = st.one_of(st.booleans().map(lambda v: {"bool_param": v}), st.integers(-2**63, 2**63 - 1).map(
        lambda v: {"int64_param": v}), st.integers(0, 2**64 - 1).map(lambda v: {"uint64_param": v}),
        st.floats().map(lambda v: {"double_param": v}), st.text(max_size=10).map(lambda v: {"string_param": v}),
        st.just({}))
    return st.dictionaries(PARAMETER_NAMES.filter(_encodable), value.map(lambda v: v2pb.InferParameter(**v)),
                           max_size=3)


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


TEXT = st.text(max_size=20)  # protobuf strings are UTF-8 (what is not is sent as raw bytes below)


@st.composite
def infer_messages(draw) -> bytes:
    tensor = v2pb.ModelInferRequest.InferInputTensor(
        name=draw(st.just("image") | TEXT), datatype=draw(DATATYPES.filter(_encodable)),
        shape=draw(st.lists(st.integers(-2**63, 2**63 - 1) | SMALL_INTS, max_size=3)), parameters=draw(parameters()),
        contents=v2pb.InferTensorContents(bytes_contents=draw(st.lists(images(), max_size=2))))
    raw = [b"".join(struct.pack("<I", len(i)) + i for i in draw(st.lists(images(), max_size=2)))]
    outputs = [v2pb.ModelInferRequest.InferRequestedOutputTensor(name=n, parameters=draw(parameters()))
               for n in draw(st.lists(st.sampled_from(v2.OUTPUTS) | TEXT, max_size=3))]
    request = v2pb.ModelInferRequest(
        model_name=draw(names().filter(_encodable)), model_version=draw(st.sampled_from(["", "1.0"]) | TEXT),
        id=draw(TEXT), parameters=draw(parameters()), inputs=[tensor] * draw(st.integers(0, 2)), outputs=outputs,
        raw_input_contents=draw(st.sampled_from([[], raw, raw * 2, [draw(st.binary(max_size=16))]])))
    return request.SerializeToString()


@FUZZ
@given(infer_messages())
def test_model_infer_parses_or_refuses(fuzz, raw):
    assert_grpc_parsed_or_refused(fuzz.run(raw_grpc_call(fuzz, '/inference.GRPCInferenceService/ModelInfer', raw)))


@FUZZ
@given(st.binary(max_size=256))
def test_model_infer_takes_any_bytes(fuzz, raw):
    assert_grpc_parsed_or_refused(fuzz.run(raw_grpc_call(fuzz, '/inference.GRPCInferenceService/ModelInfer', raw)))
