"""Request bodies are never echoed: not in request ids, not in error messages, not in any log.

Every request below carries a unique marker where a client controls the content: inside image bytes (bad,
truncated and valid images, the last in a JPEG comment or a PNG text chunk), in multipart file names and
fields, in an X-Request-ID with characters a request id may not have, in v2 JSON and binary tensors; over
REST, gRPC and v2 (REST and gRPC), to a real gateway in front of a real TorchServe, with both of the
gateway's backend protocols. Then the answers (bodies, headers, trailing metadata), everything the
gateway's process logged or printed, and TorchServe's log files must not contain any marker.

One allowance, by the Open Inference Protocol: a v2 request's own `id` comes back as the answer's `id`.
It must still appear nowhere else (not as X-Request-ID, not in a log).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import struct

import grpc
import pytest
from PIL import Image, PngImagePlugin

from tests.conftest import DATA, photo
from zooserve._proto import (
    open_inference_pb2 as v2_pb,
)
from zooserve._proto import (
    open_inference_pb2_grpc as v2_grpc,
)
from zooserve._proto import (
    zooserve_pb2 as zoo_pb,
)

from .conftest import MODEL, marker, torchserve_logs, wait_for_access_log


def truncated_jpeg(m: str) -> bytes:
    """A JPEG whose header reads (so the gateway passes it on to TorchServe) but whose data is the marker."""
    return photo("chelsea.jpg")[:1500] + m.encode() * 20


def valid_images(m: str) -> list[bytes]:
    """Images that decode and classify, carrying the marker as metadata."""
    image = Image.open(DATA / "chelsea.png").convert("RGB").resize((64, 48))
    jpeg, png = io.BytesIO(), io.BytesIO()
    image.save(jpeg, "JPEG", comment=m.encode())
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", m)
    image.save(png, "PNG", pnginfo=text)
    return [jpeg.getvalue(), png.getvalue()]


def odd_request_ids(m: str) -> list[str]:
    """X-Request-ID values a request id may not be (1-128 of letters, digits, '._:-'), each with the marker."""
    return [f"<script>{m}</script>", f"{m} with spaces", f"{m}\tTab", "${jndi:ldap://127.0.0.1/" + m + "}",
            m + "x" * 200, f"{m}%0d%0aInjected: 1"]


class Seen:
    """The markers sent, and every answer's text, gathered as the requests go."""

    def __init__(self) -> None:
        self.markers: list[str] = []
        self.answers: list[tuple[str, str]] = []

    def new(self, what: str) -> str:
        self.markers.append(m := marker(what))
        return m

    def answer(self, what: str, text: str) -> None:
        self.answers.append((what, text))


def send_rest(gateway, seen: Seen) -> None:
    def post(what: str, **kwargs) -> None:
        response = gateway.http.post(f"/predict/{MODEL}", **kwargs)
        seen.answer(what, f"{response.status_code} {dict(response.headers)} {response.text}")

    m = seen.new("body")
    post("not an image", content=m.encode() * 10, headers={"Content-Type": "image/jpeg"})
    post("truncated jpeg", content=truncated_jpeg(seen.new("jpeg")), headers={"Content-Type": "image/jpeg"})
    for image in valid_images(seen.new("valid")):
        post("valid image with the marker as metadata", content=image, headers={"Content-Type": "image/*"})
    m = seen.new("multipart")
    post("multipart", files={"image": (f"{m}.jpg", m.encode() * 5, "image/jpeg")}, data={"note": m})
    m = seen.new("field")
    post("multipart without image", files={m: (f"{m}.jpg", photo("chelsea.jpg"), "image/jpeg")})
    for rid in odd_request_ids(seen.new("rid")):
        post(f"request id {rid[:40]!r}", content=photo("chelsea.jpg"),
             headers={"Content-Type": "image/jpeg", "X-Request-ID": rid})


def send_v2_rest(gateway, seen: Seen) -> None:
    def infer(what: str, body: bytes | dict, headers: dict | None = None, rid: str | None = None) -> None:
        content = json.dumps(body).encode() if isinstance(body, dict) else body
        headers = (headers or {}) | ({"X-Request-ID": rid} if rid else {}) | {"Content-Type": "application/json"}
        response = gateway.http.post(f"/v2/models/{MODEL}/infer", content=content, headers=headers)
        answer = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        echoed = answer.pop("id", None) if isinstance(answer, dict) else None  # the protocol's echo of `id`
        text = json.dumps(answer) if answer else response.text
        seen.answer(what, f"{response.status_code} {dict(response.headers)} {text} (id echo: {echoed is not None})")

    def tensor(data: bytes, **extra) -> dict:
        return {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                            "data": [base64.b64encode(data).decode()]}], **extra}

    infer("v2 not an image", tensor(seen.new("v2body").encode() * 10))
    infer("v2 truncated jpeg", tensor(truncated_jpeg(seen.new("v2jpeg"))))
    infer("v2 valid image", tensor(valid_images(seen.new("v2valid"))[0]))
    m = seen.new("v2base64")
    infer("v2 data not base64", {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [f"!{m}!"]}]})
    m = seen.new("v2id")
    infer("v2 id", tensor(photo("chelsea.jpg"), id=f"<{m}>\n"), rid=f"<{m}>")
    m = seen.new("v2binary")
    header = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                     "parameters": {"binary_data_size": 4 + len(m) * 10}}]}).encode()
    infer("v2 binary", header + struct.pack("<I", len(m) * 10) + m.encode() * 10,
          headers={"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"})


def call(seen: Seen, what: str, rpc, request, metadata=()) -> object:
    """One gRPC call; its answer, status details and trailing metadata go to ``seen``."""
    try:
        reply, state = rpc.with_call(request, metadata=metadata, timeout=120)
        seen.answer(what, f"{reply} {state.trailing_metadata()}")
        return reply
    except grpc.RpcError as error:
        seen.answer(what, f"{error.code()} {error.details()} {error.trailing_metadata()}")
        return None


def send_grpc(gateway, seen: Seen) -> None:
    stub = gateway.stub
    call(seen, "grpc not an image", stub.Predict, zoo_pb.PredictRequest(model=MODEL, image=seen.new("g").encode() * 9))
    call(seen, "grpc truncated jpeg", stub.Predict,
         zoo_pb.PredictRequest(model=MODEL, image=truncated_jpeg(seen.new("gjpeg"))))
    for image in valid_images(seen.new("gvalid")):
        call(seen, "grpc valid image", stub.Predict, zoo_pb.PredictRequest(model=MODEL, image=image))
    for rid in odd_request_ids(seen.new("grid")):
        call(seen, "grpc request id field", stub.Predict,
             zoo_pb.PredictRequest(model=MODEL, image=photo("chelsea.jpg"), request_id=rid))
        call(seen, "grpc request id metadata", stub.Predict, zoo_pb.PredictRequest(model=MODEL, image=photo(
            "chelsea.jpg")), metadata=(("x-request-id", rid.replace("\t", " ")),))


def send_v2_grpc(gateway, seen: Seen) -> None:
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        infer = v2_grpc.GRPCInferenceServiceStub(channel).ModelInfer

        def request(**kwargs):
            tensor = v2_pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])
            return v2_pb.ModelInferRequest(model_name=MODEL, inputs=[tensor], **kwargs)

        m = seen.new("v2graw")
        call(seen, "v2 grpc raw", infer, request(raw_input_contents=[struct.pack("<I", len(m) * 9) + m.encode() * 9]))
        m = seen.new("v2gjpeg")
        corrupt = truncated_jpeg(m)
        call(seen, "v2 grpc truncated", infer, request(raw_input_contents=[struct.pack("<I", len(corrupt)) + corrupt]))
        m = seen.new("v2gid")
        image = photo("chelsea.jpg")
        reply = call(seen, "v2 grpc id", infer, request(id=f"<{m}>", raw_input_contents=[
            struct.pack("<I", len(image)) + image]))
        if reply is not None:  # the protocol's echo of `id`: the only place it may be
            seen.answers[-1] = ("v2 grpc id", str(v2_pb.ModelInferResponse(
                model_name=reply.model_name, outputs=reply.outputs)))


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # with the traceback of exc_info, where there is one


@pytest.fixture
def gateway_logs():
    """Everything any logger of this process writes, at every level, while the test runs."""
    handler, root = Captured(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_no_marker_is_echoed_or_logged(start_gateway, torchserve, inference, gateway_logs, capfd, protocol):
    seen = Seen()
    with start_gateway(backend_protocol=protocol) as gateway:
        assert gateway.predict(MODEL).status_code == 200  # loaded: the requests below reach the handler
        for send in (send_rest, send_grpc, send_v2_rest, send_v2_grpc):
            send(gateway, seen)
        statuses = [text.split(" ", 1)[0] for _, text in seen.answers]
    assert "200" in statuses and any(s.startswith(("4", "StatusCode.INVALID")) for s in statuses)
    # the truncated JPEGs passed the gateway's header check: TorchServe's handler decoded, and refused, them
    assert sum("corrupt_image" in text or "corrupt or truncated" in text for _, text in seen.answers) >= 4
    echoed = [(what, text[:300]) for what, text in seen.answers for m in seen.markers if m in text]
    assert echoed == []
    wait_for_access_log(torchserve, inference)
    logs = torchserve_logs(torchserve)
    assert [m for m in seen.markers if m in logs] == [], "in TorchServe's logs"
    printed = "".join(capfd.readouterr())
    assert [m for m in seen.markers if m in "\n".join(gateway_logs.lines) or m in printed] == [], "in our logs"
    assert gateway_logs.lines, "the capture sees the gateway's logging"


def test_the_checks_see_a_marker_where_one_is_written(gateway, torchserve, inference, gateway_logs):
    """Control: a marker the gateway does log (a valid client request id is its own id, and is answered back)
    and one TorchServe logs (a request line) are found by the same searches."""
    m = marker("control")
    response = gateway.predict(MODEL, headers={"Content-Type": "image/jpeg", "X-Request-ID": m})
    assert response.headers["x-request-id"] == m
    logging.getLogger("zooserve.gateway").warning("control %s", m)
    assert any(m in line for line in gateway_logs.lines)
    inference.request("GET", f"/{m}", torchserve.keys().inference)
    wait_for_access_log(torchserve, inference)
    assert m in torchserve_logs(torchserve)
