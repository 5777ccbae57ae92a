"""The Open Inference Protocol's HTTP/REST binding on the gateway's REST port.

Requests are JSON, or JSON followed by binary tensor data (the binary tensor data extension: the JSON's
length in ``Inference-Header-Content-Length``, each binary input's size in its ``binary_data_size``
parameter), as tritonclient sends them. The image travels as the one BYTES element of input ``image``:
base64 in JSON ``data``, or raw in the binary part (a 4-byte little-endian length, then the bytes).
Outputs come back as JSON ``data`` or, when asked (``binary_data`` on an output, ``binary_data_output`` on
the request), as binary data after the JSON. Errors are ``{"error": "<message>"}`` with the HTTP status of
the typed error (errors.py), the same as the gateway's own REST routes.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ..core import Gateway
from ..errors import BadRequest, GatewayError, Overloaded, TooLarge, UnsupportedMedia
from . import protocol as v2

log = logging.getLogger(__name__)
HEADER_LENGTH = "inference-header-content-length"
ROUTE = "v2_rest"  # the route label of zoo_requests_total
JSON_OVERHEAD = 1024 * 1024  # room for the JSON around the base64 image(s)


def error_response(error: GatewayError) -> JSONResponse:
    headers = {"Retry-After": str(error.retry_after_s)} if isinstance(error, Overloaded) else None
    return JSONResponse({"error": error.message}, status_code=error.status, headers=headers)


def v2_errors(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """The one error mapping of this binding: typed errors to their status, anything else to 500."""

    @functools.wraps(handler)
    async def handle(request: Request, *args, **kwargs) -> Response:
        try:
            return await handler(request, *args, **kwargs)
        except GatewayError as error:
            return error_response(error)
        except Exception:
            rid = getattr(request.state, "request_id", "")
            log.exception("internal error in v2 request %s", rid)
            return JSONResponse({"error": f"internal error (request id {rid})"}, status_code=500)

    return handle


def install(app: FastAPI, gateway: Gateway) -> None:
    """Adds the /v2 routes to the gateway's REST app."""
    tags = ["open inference protocol (v2)"]

    @app.get("/v2", tags=tags, summary="Server metadata")
    @v2_errors
    async def server_metadata(request: Request) -> Response:
        return JSONResponse({"name": v2.SERVER_NAME, "version": v2.SERVER_VERSION,
                             "extensions": list(v2.EXTENSIONS)})

    @app.get("/v2/health/live", tags=tags, summary="The gateway process is up")
    @v2_errors
    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    @app.get("/v2/health/ready", tags=tags, summary="Every TorchServe backend answers (400 when not)")
    @v2_errors
    async def ready(request: Request) -> Response:
        return _readiness(await v2.server_ready(gateway))

    @app.get("/v2/models/{model}", tags=tags, summary="Model metadata: versions, platform, tensors")
    @app.get("/v2/models/{model}/versions/{version}", tags=tags, summary="Model metadata of one version")
    @v2_errors
    async def model_metadata(request: Request, model: str, version: str | None = None) -> Response:
        return JSONResponse(v2.model_metadata(gateway, model, v2.version_of(version)))

    @app.get("/v2/models/{model}/ready", tags=tags, summary="The model can be served now (400 when not)")
    @app.get("/v2/models/{model}/versions/{version}/ready", tags=tags, summary="The same for one version")
    @v2_errors
    async def model_ready(request: Request, model: str, version: str | None = None) -> Response:
        return _readiness(await v2.model_ready(gateway, model, v2.version_of(version)))

    @app.post("/v2/models/{model}/infer", tags=tags, summary="Classify images given as a BYTES tensor")
    @app.post("/v2/models/{model}/versions/{version}/infer", tags=tags, summary="The same with one version")
    @v2_errors
    async def infer(request: Request, model: str, version: str | None = None) -> Response:
        body = await _read_body(request, gateway.settings.max_body_bytes * 4 // 3 + JSON_OVERHEAD)
        header, binary = _split(body, request.headers.get(HEADER_LENGTH))
        inputs = header.get("inputs")
        v2.check_single_input(len(inputs) if isinstance(inputs, list) else 0)
        images = _images(inputs[0], binary)
        parameters = _dict(header.get("parameters"), "parameters")
        outputs = header.get("outputs") or []
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise BadRequest("outputs must be a list of objects", code="bad_request")
        names = v2.requested_outputs(str(o.get("name", "")) for o in outputs)
        results = await v2.infer(
            gateway, model, v2.version_of(version), images, route=ROUTE, topk=v2.topk_parameter(parameters),
            request_id=request.state.request_id, timeout_s=v2.timeout_parameter(parameters),
        )
        binary_default = parameters.get("binary_data_output") is True
        as_binary = {str(o.get("name")): _dict(o.get("parameters"), "output parameters").get("binary_data")
                     for o in outputs}
        answer: dict[str, Any] = {"model_name": results[0].model, "model_version": results[0].version}
        if isinstance(header.get("id"), str):
            answer["id"] = header["id"]
        tensors, blobs = [], []
        for tensor in v2.output_tensors(results, names):
            entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
            if as_binary.get(tensor.name, binary_default) is True:
                blob = tensor.raw()
                entry["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                entry["data"] = tensor.data
            tensors.append(entry)
        answer["outputs"] = tensors
        if not blobs:
            return JSONResponse(answer)
        head = json.dumps(answer, separators=(",", ":")).encode()
        return Response(head + b"".join(blobs), media_type="application/octet-stream",
                        headers={"Inference-Header-Content-Length": str(len(head))})


def _readiness(ready: bool) -> JSONResponse:
    # the protocol: 200 for true, a 4xx for false
    return JSONResponse({"ready": ready}, status_code=200 if ready else 400)


async def _read_body(request: Request, limit: int) -> bytes:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMedia(f"unsupported Content-Encoding {encoding[:40]!r}: send the request uncompressed",
                               code="unsupported_content_type")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body too large: {declared} bytes > limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body too large: more than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _split(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON header and the binary data after it (none without Inference-Header-Content-Length)."""
    if header_length is None:
        head, binary = body, b""
    else:
        if not header_length.strip().isdigit() or int(header_length) > len(body):
            raise BadRequest(f"bad Inference-Header-Content-Length {header_length[:40]!r} for a body of "
                             f"{len(body)} bytes", code="bad_request")
        head, binary = body[:int(header_length)], body[int(header_length):]
    if not head:
        raise BadRequest("empty request: send a JSON inference request", code="empty_body")
    try:
        header = json.loads(head)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest(f"the request is not valid JSON: {error}", code="bad_request") from None
    if not isinstance(header, dict):
        raise BadRequest("the request must be a JSON object", code="bad_request")
    return header, binary


def _dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object", code="bad_request")
    return value


def _images(tensor: Any, binary: bytes) -> list[bytes]:
    """The encoded images of input ``image``: from the binary data, or base64 strings in ``data``."""
    if not isinstance(tensor, dict):
        raise BadRequest("an input must be a JSON object", code="bad_tensor")
    parameters = _dict(tensor.get("parameters"), "input parameters")
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size != len(binary):
            raise BadRequest(f"binary_data_size {str(size)[:20]} does not match the {len(binary)} bytes of "
                             "binary data after the JSON", code="bad_tensor")
        images = v2.decode_bytes(binary)
    else:
        images = [_base64(item) for item in _flatten(tensor.get("data"))]
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise BadRequest("an input's shape must be a list of integers", code="bad_tensor")
    v2.check_input(str(tensor.get("name", "")), str(tensor.get("datatype", "")), shape, len(images))
    return images


def _flatten(data: Any) -> list[Any]:
    if data is None:
        raise BadRequest(f"input {v2.INPUT!r} has neither data nor binary_data_size", code="bad_tensor")
    if not isinstance(data, list):
        return [data]
    return [item for element in data for item in _flatten(element)] if data else []


def _base64(item: Any) -> bytes:
    if not isinstance(item, str):
        raise BadRequest(f"the elements of {v2.INPUT!r} in JSON are base64 strings of the encoded image",
                         code="bad_tensor")
    try:
        return base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"an element of {v2.INPUT!r} is not valid base64 (in JSON, BYTES data is the base64 "
                         "of the encoded image)", code="bad_tensor") from None
