"""The REST transport: FastAPI routes that parse HTTP, call the core (predictions through the experiments
layer), and map its typed errors to statuses with the one error table.

Every answer carries X-Request-ID (the client's, when it sent a usable one); every error is JSON
``{"error": {"code", "message"}}``, never a stack trace; every request gets one access line (``logs.py``).
"""

from __future__ import annotations

import logging
import re
import time

import orjson
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Match

from zooserve import __version__

from .. import logs, page
from ..core import Gateway, PredictRequest, request_id
from ..errors import GatewayError
from ..experiments.layer import Experiments
from ..metrics import UNKNOWN_MODEL
from ..settings import VERSION_PATTERN, valid_version
from ..v2 import rest as v2_rest
from .body import IMAGE_FIELD, read_image
from .experiments import install_experiment_routes
from .responses import VARIANT_HEADER, error_response, internal_error, plain_error
from .schemas import ErrorResponse, Health, ModelEntry, ModelList, PredictResponse, Readiness, result_body

log = logging.getLogger(__name__)
REQUEST_ID_HEADER = b"x-request-id"
VARIANT_HEADER_BYTES = VARIANT_HEADER.lower().encode()
PLAIN_TOPK = re.compile(rb"(?:topk=([0-9]{1,9}))?")  # no query, or topk in digits alone
PREDICT_ROUTES = ("predict_default", "predict_version")  # the routes RestApp matches plain predictions with
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


class RestApp:
    """The REST ASGI app around FastAPI: each request's id, X-Request-ID header and access line, and, with
    ``predict_ahead``, plain predictions (no query, or ``topk`` in digits alone; a well-formed version) sent
    straight to ``predict``, matched by FastAPI's own two prediction routes but past its middleware, router,
    parameter solving and exception handlers (measured: docs/gateway.md, loadtests/rest_paths.py). Any other
    request goes to FastAPI, so what a client is told of a bad parameter stays FastAPI's; the answers are the
    same either way (tests/gateway/test_rest.py)."""

    def __init__(self, api: FastAPI, gateway: Gateway, experiments: Experiments, predict_ahead: bool = True):
        self.api, self.gateway, self.experiments = api, gateway, experiments
        self.predict_routes = [r for r in api.routes if isinstance(r, APIRoute) and r.name in PREDICT_ROUTES]
        self.predict_ahead = predict_ahead

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.api(scope, receive, send)
        started, answer = time.perf_counter(), {"status": 500, "variant": None}
        rid = _assign_request_id(scope)

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                headers = message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, rid.encode())]
                answer["status"] = message["status"]
                answer["variant"] = next((v.decode() for k, v in headers if k == VARIANT_HEADER_BYTES), None)
            await send(message)

        try:
            params = self._plain_prediction(scope) if self.predict_ahead else None
            if params is None:
                await self.api(scope, receive, send_with_id)
            else:
                await self._predict(scope, receive, send_with_id, rid, params)
        finally:
            transport = "v2_rest" if scope["path"].startswith("/v2/") else "rest"
            logs.access(transport, rid, answer["status"], started, self._model_label(scope), answer["variant"])

    def _plain_prediction(self, scope) -> dict | None:
        """The path parameters of a plain prediction (and ``topk``), or None for anything else."""
        query = PLAIN_TOPK.fullmatch(scope["query_string"])
        if query is None:
            return None
        for route in self.predict_routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                params = child["path_params"]
                if "version" in params and not valid_version(params["version"]):
                    return None
                scope["path_params"] = params
                return params | {"topk": int(query[1]) if query[1] else None}
        return None

    async def _predict(self, scope, receive, send, rid: str, params: dict) -> None:
        try:
            response = await predict(self.gateway, self.experiments, Request(scope, receive), params["model"],
                                     params.get("version"), params["topk"])
        except GatewayError as error:
            response = error_response(error, self.gateway.settings.retry_after_s)
        except Exception:  # what FastAPI's outermost handler does for its routes
            response = internal_error(rid)
        await response(scope, receive, send)

    def _model_label(self, scope) -> str | None:
        name = scope.get("path_params", {}).get("model")
        if name is None:
            return None
        return name if self.experiments.knows(name) else UNKNOWN_MODEL


def _assign_request_id(scope) -> str:
    """The request's id (the client's X-Request-ID when usable), kept in the scope for ``request.state``."""
    given = next((v.decode("latin-1") for k, v in scope["headers"] if k == REQUEST_ID_HEADER), "")
    scope.setdefault("state", {})["request_id"] = rid = request_id(given)
    return rid


def _install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, error: GatewayError) -> Response:
        return error_response(error, retry_after_s)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return plain_error(422, "invalid_request", f"invalid request: {problems}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        code = {404: "no_such_route", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        message = str(error.detail)
        if error.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
            # say which route was asked for (the path is cut short: it is the client's text)
            message = f"{message.lower()}: {request.method} {request.url.path[:200]}"
        return plain_error(error.status_code, code, message, getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> Response:
        return internal_error(getattr(request.state, "request_id", ""))


def create_app(gateway: Gateway, experiments: Experiments, predict_ahead: bool = True) -> RestApp:
    """The REST ASGI app (``predict_ahead=False``: FastAPI alone, as loadtests/rest_paths.py measures it)."""
    app = FastAPI(
        title="zooserve", version=__version__,
        description="Every architecture of the image-classification canon, served through TorchServe.",
    )
    _install_error_handlers(app, gateway.settings.retry_after_s)
    _install_routes(app, gateway, experiments)
    install_experiment_routes(app, experiments)
    v2_rest.install(app, gateway, experiments)  # the Open Inference Protocol (v2) under /v2
    page.install(app)  # GET /: the page for people
    _document_validation_errors(app)
    return RestApp(app, gateway, experiments, predict_ahead)


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


async def predict(gateway: Gateway, experiments: Experiments, request: Request, model: str, version: str | None,
                  topk: int | None) -> Response:
    """POST /predict/{model}[/{version}], from RestApp or from FastAPI's route."""
    result = await experiments.predict(PredictRequest(
        model=model, image=lambda: read_image(request, gateway.settings.max_body_bytes), route="rest",
        version=version, topk=topk, request_id=request.state.request_id, headers=request.headers,
    ))
    # the body is built from the core's typed result as PredictResponse describes it (a test holds them
    # together), without the asdict deep copy and the two validations (ours, then FastAPI's response_model)
    # that a prediction went through before: the gateway's CPU per request is the budget (docs/gateway.md)
    headers = {VARIANT_HEADER: result.variant} if result.variant is not None else None
    return Response(orjson.dumps(result_body(result)), media_type="application/json", headers=headers)


def _install_routes(app: FastAPI, gateway: Gateway, experiments: Experiments) -> None:
    topk_query = Query(default=None, description="how many classes to return (default 5)", examples=[3])

    @app.post("/predict/{model}", response_model=PredictResponse, responses=ERRORS, tags=["predict"],
              openapi_extra={"requestBody": IMAGE_BODY}, summary="Classify an image with the model's default version")
    async def predict_default(request: Request, model: str = MODEL_PATH,
                              topk: int | None = topk_query) -> Response:
        return await predict(gateway, experiments, request, model, None, topk)

    @app.post("/predict/{model}/{version}", response_model=PredictResponse, responses=ERRORS, tags=["predict"],
              openapi_extra={"requestBody": IMAGE_BODY}, summary="Classify an image with one version of the model")
    async def predict_version(request: Request, model: str = MODEL_PATH,
                              version: str = Path(pattern=VERSION_PATTERN, examples=[gateway.catalog.archive_version]),
                              topk: int | None = topk_query) -> Response:
        return await predict(gateway, experiments, request, model, version, topk)

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
             summary="The gateway routes requests (its backends' last pings are reported, not required)")
    async def readyz() -> Readiness | Response:
        serving, backends = gateway.readiness()
        if not serving:
            return plain_error(503, "not_ready", "not ready: the gateway is starting or stopping")
        return Readiness(status="ready", backends=backends)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(gateway.metrics.render(), media_type=gateway.metrics.content_type)
