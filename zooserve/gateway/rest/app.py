"""The REST transport: FastAPI routes that parse HTTP, call the core, and map its typed errors to statuses.

Every answer carries X-Request-ID (the client's, when it sent a usable one); every error is JSON
``{"error": {"code", "message"}}``, never a stack trace.
"""

from __future__ import annotations

import logging
import re

import orjson
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from .. import page
from ..core import Gateway, PredictRequest, request_id
from ..errors import GatewayError, NotFound, Overloaded
from ..settings import VERSION_PATTERN, valid_version
from ..v2 import rest as v2_rest
from .body import IMAGE_FIELD, read_image
from .experiments import install_experiment_routes
from .schemas import ErrorResponse, Health, ModelEntry, ModelList, PredictResponse, Readiness, result_body

log = logging.getLogger(__name__)
REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
VARIANT_HEADER = "X-Variant"
PREDICT_PATH = re.compile(r"/predict/([^/]+)(?:/([^/]+))?")  # Starlette's {name} is one segment too
PLAIN_TOPK = re.compile(rb"(?:topk=([0-9]{1,9}))?")
ERRORS = {status: {"model": ErrorResponse} for status in (400, 404, 413, 415, 422, 429, 502, 503, 504)}
MODEL_PATH = Path(description="a registry name (GET /models lists them)", examples=["resnet18"])
IMAGE_BODY = {
    "description": f"the image file as the body, or as the multipart form field `{IMAGE_FIELD}`",
    "required": True,
    "content": {
        "image/*": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {
            "type": "object", "required": [IMAGE_FIELD],
            "properties": {IMAGE_FIELD: {"type": "string", "format": "binary"}},
        }},
    },
}


class RequestIdMiddleware:
    """Gives every request an id (the client's X-Request-ID when usable) and echoes it in the answer."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = _assign_request_id(scope)

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER_BYTES, rid.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


def _assign_request_id(scope) -> str:
    """The request's id (the client's X-Request-ID when usable), kept in the scope for ``request.state``."""
    given = next((v.decode("latin-1") for k, v in scope["headers"] if k == REQUEST_ID_HEADER_BYTES), "")
    scope.setdefault("state", {})["request_id"] = rid = request_id(given)
    return rid


def error_response(error: GatewayError) -> JSONResponse:
    body: dict = {"code": error.code, "message": error.message}
    if isinstance(error, NotFound) and error.close_matches:
        body["close_matches"] = error.close_matches
    headers = {"Retry-After": str(error.retry_after_s)} if isinstance(error, Overloaded) else {}
    if getattr(error, "variant", None):  # a request on an experiment: the variant that failed
        headers[VARIANT_HEADER] = error.variant
    return JSONResponse({"error": body}, status_code=error.status, headers=headers or None)


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, error: GatewayError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return _error(422, "invalid_request", f"invalid request: {problems}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "no_such_route",
                405: "method_not_allowed"}.get(error.status_code, "http_error")
        message = str(error.detail)
        if error.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
            # say which route was asked for (the path is cut short: it is the client's text)
            message = f"{message.lower()}: {request.method} {request.url.path[:200]}"
        return _error(error.status_code, code, message, getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        # outside the request-id middleware (Starlette runs this handler outermost): it adds the header itself
        return _internal_error(getattr(request.state, "request_id", ""))


def _internal_error(rid: str) -> JSONResponse:
    log.exception("internal error in request %s", rid)
    return _error(500, "internal", f"internal error (request id {rid})", {"X-Request-ID": rid})


def create_app(gateway: Gateway) -> "PredictFastPath":
    """The REST ASGI app: plain predictions through PredictFastPath, every other request through FastAPI."""
    app = FastAPI(
        title="zooserve", version="1.0",
        description="Every architecture of the image-classification canon, served through TorchServe.",
    )
    app.add_middleware(RequestIdMiddleware)
    _install_error_handlers(app)
    _install_routes(app, gateway)
    install_experiment_routes(app, gateway)
    v2_rest.install(app, gateway)  # the Open Inference Protocol (v2) under /v2
    page.install(app)  # GET /: the page for people
    _document_validation_errors(app)
    return PredictFastPath(app, gateway)


def _document_validation_errors(app: FastAPI) -> None:
    """FastAPI documents a 422 with its own body (HTTPValidationError) on every route with parameters; ours is
    ErrorResponse (the handler above): the document says what a client really gets."""
    make = app.openapi
    ours = {"description": "a parameter of the wrong type",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = make()
            for operation in (op for path in document["paths"].values() for op in path.values()):
                if "HTTPValidationError" in str(operation.get("responses", {}).get("422", "")):
                    operation["responses"]["422"] = ours
            for name in ("HTTPValidationError", "ValidationError"):
                document.get("components", {}).get("schemas", {}).pop(name, None)
        return app.openapi_schema

    app.openapi = openapi


async def predict(gateway: Gateway, request: Request, model: str, version: str | None,
                  topk: int | None) -> Response:
    """POST /predict/{model}[/{version}], from PredictFastPath or from FastAPI's route."""
    result = await gateway.predict(PredictRequest(
        model=model, image=lambda: read_image(request, gateway.check_body_size), route="rest",
        version=version, topk=topk, request_id=request.state.request_id, headers=request.headers,
    ))
    # the body is built from the core's typed result as PredictResponse describes it (a test holds them
    # together), without the asdict deep copy and the two validations (ours, then FastAPI's response_model)
    # that a prediction went through before: the gateway's CPU per request is the budget (docs/gateway.md)
    headers = {VARIANT_HEADER: result.variant} if result.variant is not None else None
    return Response(orjson.dumps(result_body(result)), media_type="application/json", headers=headers)


class PredictFastPath:
    """POST /predict/{model}[/{version}] straight to ``predict``, in front of FastAPI: its middleware stack,
    router, parameter solving and exception handlers cost about a quarter of a millisecond a request on a
    2-core machine (docs/gateway.md). Only a request whose parameters are plainly valid takes this path (no
    query, or ``topk`` in ASCII digits alone, a well-formed version); any other goes on to FastAPI's route,
    so what a client is told of a bad parameter stays FastAPI's. Answers are the same either way: the same
    ``predict``, the same error bodies, the same X-Request-ID."""

    def __init__(self, api: FastAPI, gateway: Gateway):
        self.api, self.gateway = api, gateway

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            route = PREDICT_PATH.fullmatch(scope["path"])
            query = PLAIN_TOPK.fullmatch(scope["query_string"])
            if route and query and (route[2] is None or valid_version(route[2])):
                topk = int(query[1]) if query[1] else None
                return await self._predict(scope, receive, send, route[1], route[2], topk)
        await self.api(scope, receive, send)

    async def _predict(self, scope, receive, send, model: str, version: str | None, topk: int | None) -> None:
        rid = _assign_request_id(scope)
        try:
            response = await predict(self.gateway, Request(scope, receive), model, version, topk)
        except GatewayError as error:
            response = error_response(error)
        except Exception:  # what FastAPI's outermost handler does for its routes (_internal_error)
            response = _internal_error(rid)
        response.headers[REQUEST_ID_HEADER] = rid
        await response(scope, receive, send)


def _install_routes(app: FastAPI, gateway: Gateway) -> None:
    topk_query = Query(default=None, description="how many classes to return (default 5)", examples=[3])

    @app.post("/predict/{model}", response_model=PredictResponse, responses=ERRORS, tags=["predict"],
              openapi_extra={"requestBody": IMAGE_BODY}, summary="Classify an image with the model's default version")
    async def predict_default(request: Request, model: str = MODEL_PATH,
                              topk: int | None = topk_query) -> Response:
        return await predict(gateway, request, model, None, topk)

    @app.post("/predict/{model}/{version}", response_model=PredictResponse, responses=ERRORS, tags=["predict"],
              openapi_extra={"requestBody": IMAGE_BODY}, summary="Classify an image with one version of the model")
    async def predict_version(request: Request, model: str = MODEL_PATH,
                              version: str = Path(pattern=VERSION_PATTERN, examples=["1.0"]),
                              topk: int | None = topk_query) -> Response:
        return await predict(gateway, request, model, version, topk)

    @app.get("/models", response_model=ModelList, tags=["catalog"], summary="Every architecture served")
    async def list_models() -> ModelList:
        return ModelList(models=await gateway.list_models())

    @app.get("/models/{model}", response_model=ModelEntry, responses={404: {"model": ErrorResponse}},
             tags=["catalog"], summary="One architecture")
    async def get_model(model: str = MODEL_PATH) -> ModelEntry:
        return ModelEntry.model_validate(await gateway.get_model(model))

    @app.get("/healthz", response_model=Health, tags=["health"], summary="The gateway process is up")
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get("/readyz", response_model=Readiness, responses={503: {"model": ErrorResponse}}, tags=["health"],
             summary="Every TorchServe backend answers")
    async def readyz() -> Readiness | JSONResponse:
        backends = await gateway.ready()
        down = [name for name, up in backends.items() if not up]
        if down:
            return _error(503, "backend_unavailable", f"not ready: no answer from backend(s) {', '.join(down)}")
        return Readiness(status="ready", backends=backends)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(gateway.metrics.render(), media_type=gateway.metrics.content_type)
