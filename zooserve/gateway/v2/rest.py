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
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Path, Request
from fastapi.responses import JSONResponse, Response

from ..core import Gateway
from ..errors import BadRequest, GatewayError, UnsupportedMedia
from ..experiments.layer import Experiments
from ..rest.body import read_capped
from ..rest.responses import internal_error, v2_error_response
from . import protocol as v2
from . import schemas
from .schemas import errors

HEADER_LENGTH = "inference-header-content-length"
MODEL = Path(description="a registry name", examples=["resnet18"])
ROUTE = "v2_rest"  # the route label of zoo_requests_total
JSON_OVERHEAD = 1024 * 1024  # room for the JSON around the base64 image(s)


def v2_errors(retry_after_s: int) -> Callable:
    """The one error mapping of this binding: typed errors to their status, anything else to 500."""

    def wrap(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
        @functools.wraps(handler)
        async def handle(request: Request, *args, **kwargs) -> Response:
            try:
                return await handler(request, *args, **kwargs)
            except GatewayError as error:
                return v2_error_response(error, retry_after_s)
            except Exception:
                return internal_error(getattr(request.state, "request_id", ""), v2=True)

        return handle

    return wrap


def install(app: FastAPI, gateway: Gateway, experiments: Experiments) -> None:
    """Adds the /v2 routes to the gateway's REST app."""
    tags = ["open inference protocol (v2)"]
    v2_errors_ = v2_errors(gateway.settings.retry_after_s)
    readiness = {200: {"model": schemas.Ready}, 400: {"model": schemas.Ready, "description": "not ready"}}
    # 400 is also a malformed version's error; 422 is overridden: app-wide it is the REST API's error body
    model_readiness = {**readiness, 400: {"description": "not ready, or a malformed version", "content": {
        "application/json": {"schema": {"anyOf": [{"$ref": "#/components/schemas/Ready"},
                                                  {"$ref": "#/components/schemas/V2Error"}]}}}},
                   **errors(404, 422)}
    _document_request_bodies(app)

    @app.get("/v2", tags=tags, summary="Server metadata", responses={200: {"model": schemas.ServerMetadata}})
    @v2_errors_
    async def server_metadata(request: Request) -> Response:
        return JSONResponse({"name": v2.SERVER_NAME, "version": v2.SERVER_VERSION,
                             "extensions": list(v2.EXTENSIONS)})

    @app.get("/v2/health/live", tags=tags, summary="The gateway process is up",
             responses={200: {"model": schemas.Live}})
    @v2_errors_
    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    @app.get("/v2/health/ready", tags=tags, summary="The gateway routes requests (400 when not)",
             responses=readiness)
    @v2_errors_
    async def ready(request: Request) -> Response:
        return _readiness(v2.server_ready(gateway))

    metadata = {200: {"model": schemas.ModelMetadata}, **errors(400, 404, 422)}

    @app.get("/v2/models/{model}", tags=tags, summary="Model metadata: versions, platform, tensors",
             responses=metadata)
    @app.get("/v2/models/{model}/versions/{version}", tags=tags, summary="Model metadata of one version",
             responses=metadata)
    @v2_errors_
    async def model_metadata(request: Request, model: str = MODEL, version: str | None = None) -> Response:
        return JSONResponse(v2.model_metadata(gateway, model, v2.version_of(version)))

    @app.get("/v2/models/{model}/ready", tags=tags, summary="The model can be served now (400 when not)",
             responses=model_readiness)
    @app.get("/v2/models/{model}/versions/{version}/ready", tags=tags, summary="The same for one version",
             responses=model_readiness)
    @v2_errors_
    async def model_ready(request: Request, model: str = MODEL, version: str | None = None) -> Response:
        return _readiness(await v2.model_ready(gateway, model, v2.version_of(version)))

    infer_doc = {"tags": tags, "responses": schemas.INFER_RESPONSES, "openapi_extra": {
        "requestBody": schemas.INFER_BODY, "parameters": [schemas.HEADER_LENGTH_PARAMETER]}}

    @app.post("/v2/models/{model}/infer", summary="Classify images given as a BYTES tensor", **infer_doc)
    @app.post("/v2/models/{model}/versions/{version}/infer", summary="The same with one version", **infer_doc)
    @v2_errors_
    async def infer(request: Request, model: str = MODEL, version: str | None = None) -> Response:
        version = v2.version_of(version)
        v2.check_name(gateway, experiments, model, version)  # as POST /predict: before the body is read
        body = await _read_body(request, gateway.settings.max_body_bytes * 4 // 3 + JSON_OVERHEAD)
        header, binary = _split(body, request.headers.get(HEADER_LENGTH))
        images, parameters, outputs = _parse(header, binary)
        results = await v2.infer(
            experiments, model, version, images, route=ROUTE, topk=v2.topk_parameter(parameters),
            request_id=request.state.request_id, timeout_s=v2.timeout_parameter(parameters),
        )
        return _answer(header, parameters, outputs, results)


def _parse(header: dict[str, Any], binary: bytes) -> tuple[list[bytes], dict[str, Any], list[dict[str, Any]]]:
    """The images, the request's parameters and the outputs asked for (each named), all checked."""
    inputs = header.get("inputs")
    v2.check_single_input(len(inputs) if isinstance(inputs, list) else 0)
    images = _images(inputs[0], binary)
    parameters = _dict(header.get("parameters"), "parameters")
    v2.check_parameters(parameters, v2.REST_PARAMETERS["request"])
    outputs = header.get("outputs") or []
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise BadRequest("outputs must be a list of objects", code="bad_request")
    names = v2.requested_outputs(str(o.get("name", "")) for o in outputs)
    for output in outputs:
        v2.check_parameters(_dict(output.get("parameters"), "output parameters"), v2.REST_PARAMETERS["output"],
                            f"output {output.get('name')!r}")
    asked = {str(o.get("name")): o for o in outputs}
    return images, parameters, [asked.get(name, {"name": name}) for name in names]


def _answer(header: dict[str, Any], parameters: dict[str, Any], outputs: list[dict[str, Any]],
            results: list) -> Response:
    """JSON, with each output as JSON data or as binary data after it (the binary tensor data extension)."""
    binary_default = parameters.get("binary_data_output") is True
    answer: dict[str, Any] = {"model_name": results[0].model, "model_version": results[0].version}
    if isinstance(header.get("id"), str):
        answer["id"] = header["id"]
    tensors, blobs = [], []
    for tensor, output in zip(v2.output_tensors(results, [o["name"] for o in outputs]), outputs):
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if _dict(output.get("parameters"), "output parameters").get("binary_data", binary_default) is True:
            blob = tensor.raw()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = tensor.data
        tensors.append(entry)
    answer["outputs"] = tensors
    # ASCII JSON: the id is the client's text, which may hold lone surrogates that UTF-8 cannot encode
    head = json.dumps(answer, separators=(",", ":")).encode()
    if not blobs:
        return Response(head, media_type="application/json")
    return Response(head + b"".join(blobs), media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(head))})


def _document_request_bodies(app: FastAPI) -> None:
    """Puts the request body's schemas (which no route parameter declares: the body is parsed by hand) into
    the document's components, where INFER_BODY refers to them."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = make()
            request = schemas.InferenceRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            components = document.setdefault("components", {}).setdefault("schemas", {})
            components.update(request.pop("$defs", {}))
            components["InferenceRequest"] = request
        return app.openapi_schema

    app.openapi = openapi


def _readiness(ready: bool) -> JSONResponse:
    # the protocol: 200 for true, a 4xx for false
    return JSONResponse({"ready": ready}, status_code=200 if ready else 400)


async def _read_body(request: Request, limit: int) -> bytes:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMedia(f"unsupported Content-Encoding {encoding[:40]!r}: send the request uncompressed",
                               code="unsupported_content_type")
    return await read_capped(request, limit)


def _split(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON header and the binary data after it (none without Inference-Header-Content-Length)."""
    if header_length is None:
        head, binary = body, b""
    else:
        # ASCII digits only: str.isdigit() also takes '²', which int() refuses
        if not re.fullmatch(r"[0-9]{1,15}", header_length.strip()) or int(header_length) > len(body):
            raise BadRequest(f"bad Inference-Header-Content-Length {header_length[:40]!r} for a body of "
                             f"{len(body)} bytes", code="bad_request")
        head, binary = body[:int(header_length)], body[int(header_length):]
    if not head:
        raise BadRequest("empty request: send a JSON inference request", code="empty_body")
    try:
        header = json.loads(head)
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, an integer of over 4300 digits
        raise BadRequest(f"the request is not valid JSON: {str(error)[:200]}", code="bad_request") from None
    except RecursionError:  # the decoder recurses once per level of nesting
        raise BadRequest("the request is not valid JSON here: it nests too deeply", code="bad_request") from None
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
    v2.check_parameters(parameters, v2.REST_PARAMETERS["input"], f"input {str(tensor.get('name', ''))[:80]!r}")
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
    """The elements of ``data``, flat or nested as its shape ([N] or [N, 1]); deeper nesting is refused
    (without recursing: a client chooses the depth)."""
    if data is None:
        raise BadRequest(f"input {v2.INPUT!r} has neither data nor binary_data_size", code="bad_tensor")
    if not isinstance(data, list):
        return [data]
    items = []
    for element in data:
        row = element if isinstance(element, list) else [element]
        if any(isinstance(item, list) for item in row):
            raise BadRequest(f"the data of {v2.INPUT!r} nests deeper than its shape ([N] or [N, 1]) allows",
                             code="bad_tensor")
        items.extend(row)
    return items


def _base64(item: Any) -> bytes:
    if not isinstance(item, str):
        raise BadRequest(f"the elements of {v2.INPUT!r} in JSON are base64 strings of the encoded image",
                         code="bad_tensor")
    try:
        return base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"an element of {v2.INPUT!r} is not valid base64 (in JSON, BYTES data is the base64 "
                         "of the encoded image)", code="bad_tensor") from None
