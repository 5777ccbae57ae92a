"""Property-based fuzzing of the gateway's request parsing for POST /predict and ZooService.Predict: the body
reader (zooserve/gateway/rest/body.py: Content-Type, Content-Length, multipart), the route's path and query
(model name, version, topk) and the core's checks behind them. Whatever arrives, the answer is a typed 4xx
or a valid parse (which, the backend being dead, is a typed 503/504; fuzz_gateway.py), never a 500.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from tests.reliability.fuzz_gateway import (
    FUZZ,
    MAX_BODY,
    assert_grpc_parsed_or_refused,
    assert_http_parsed_or_refused,
    fuzz_gateway,
    images,
    names,
    raw_grpc_call,
)
from zooserve._proto import zooserve_pb2 as pb
from zooserve.gateway.errors import GatewayError
from zooserve.gateway.rest.body import read_image

CONTENT_TYPES = ["image/jpeg", "image/png", "image/", "application/octet-stream", "", "multipart/form-data",
                 "multipart/form-data; boundary=zoo", "multipart/form-data; boundary=",
                 'multipart/form-data; boundary="z"', "text/plain", "application/json", "IMAGE/JPEG; charset=utf-8",
                 "multipart/mixed; boundary=zoo"]
LATIN1 = st.characters(max_codepoint=255, exclude_characters="\r\n")  # what an HTTP header can carry
# Content-Length values int() refuses though str.isdigit() takes them, and other near-numbers (uvicorn itself
# refuses them; another ASGI server might not)
HOSTILE_LENGTHS = ["\u00b2", "\u00b9\u00b3", "0x10", " 12", "1e3", "-0", "99999999999999999999999"]


@pytest.fixture(scope="module")
def fuzz():
    with fuzz_gateway() as running:
        yield running


def content_types() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(CONTENT_TYPES), st.text(LATIN1, max_size=60))


@st.composite
def multipart_bodies(draw) -> bytes:
    """Forms with fields named image or otherwise, files or not, and sometimes broken framing."""
    boundary = draw(st.sampled_from(["zoo", "z", "x" * 70]))
    body = b""
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.one_of(st.just("image"), st.text(st.characters(codec="ascii", exclude_characters='"\r\n'),
                                                        max_size=10)))
        filename = draw(st.one_of(st.none(), st.just("a.jpg"), st.text(LATIN1, max_size=10)))
        disposition = f'form-data; name="{name}"' + ("" if filename is None else f'; filename="{filename}"')
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode("latin-1")
        body += draw(images()) + b"\r\n"
    body += f"--{boundary}--\r\n".encode() if draw(st.booleans()) else b""
    cut = draw(st.one_of(st.none(), st.integers(0, len(body))))
    return body if cut is None else body[:cut]


def asgi_request(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> Request:
    """A real Starlette request as an ASGI server hands it over, its body arriving in ``chunks``."""
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    messages.append({"type": "http.request", "body": b"", "more_body": False})

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/predict/resnet18", "headers": headers, "query_string": b""}
    return Request(scope, receive)


@FUZZ
@given(content_type=content_types(),
       declared=st.one_of(st.none(), st.integers(-1, 2 * MAX_BODY).map(str), st.text(LATIN1, max_size=12),
                          st.sampled_from(HOSTILE_LENGTHS)),
       body=st.one_of(images(), multipart_bodies()), chunk=st.integers(1, 4096))
def test_the_body_reader_gives_the_image_or_a_typed_4xx(fuzz, content_type, declared, body, chunk):
    headers = [(b"content-type", content_type.encode("latin-1"))]
    if declared is not None:
        headers.append((b"content-length", declared.encode("latin-1")))
    chunks = [body[i:i + chunk] for i in range(0, len(body), chunk)]
    try:
        image = fuzz.run(read_image(asgi_request(headers, chunks), fuzz.gateway.settings.max_body_bytes))
    except GatewayError as error:
        assert 400 <= error.status < 500 and error.code and error.message, error
        return
    assert len(image) <= MAX_BODY
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        assert image == body  # a raw body is the image itself


@pytest.mark.parametrize("declared", HOSTILE_LENGTHS)
def test_the_body_reader_refuses_hostile_lengths(fuzz, declared):
    """Each hostile Content-Length for certain (the strategy above draws them only now and then)."""
    request = asgi_request([(b"content-type", b"image/jpeg"), (b"content-length", declared.encode("latin-1"))],
                           [b"\xff\xd8\xff"])
    try:
        image = fuzz.run(read_image(request, fuzz.gateway.settings.max_body_bytes))
    except GatewayError as error:  # the cap, for a length that is a number
        assert 400 <= error.status < 500, error
    else:
        assert image == b"\xff\xd8\xff"


@FUZZ
@given(model=names().filter(bool), version=st.one_of(st.none(), st.just("1.0"), st.text(min_size=1, max_size=70)),
       topk=st.one_of(st.none(), st.integers(-5, 1100).map(str), st.text(max_size=8)),
       content_type=content_types(), body=st.one_of(images(), multipart_bodies()))
def test_predict_parses_or_refuses_with_a_typed_4xx(fuzz, model, version, topk, content_type, body):
    # (no empty path segment: /predict/ is another route, which answers with a redirect)
    path = f"/predict/{quote(model, safe='')}" + ("" if version is None else f"/{quote(version, safe='')}")
    params = {} if topk is None else {"topk": topk}
    response = fuzz.run(fuzz.http.post(path, content=body, params=params,
                                       headers={"Content-Type": content_type.encode("latin-1")}))
    assert_http_parsed_or_refused(response)


@FUZZ
@given(model=names(), version=st.text(max_size=70), topk=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
       image=images())
def test_zooservice_predict_parses_or_refuses(fuzz, model, version, topk, image):
    request = pb.PredictRequest(model=model, version=version, image=image, **({} if topk is None else {"topk": topk}))
    assert_grpc_parsed_or_refused(fuzz.run(raw_grpc_call(fuzz, '/zooserve.v1.ZooService/Predict', request.SerializeToString())))


@FUZZ
@given(st.binary(max_size=256))
def test_zooservice_predict_takes_any_bytes(fuzz, raw):
    """Bytes that may not even be a PredictRequest (gRPC's own answer to those would be UNKNOWN)."""
    assert_grpc_parsed_or_refused(fuzz.run(raw_grpc_call(fuzz, '/zooserve.v1.ZooService/Predict', raw)))


