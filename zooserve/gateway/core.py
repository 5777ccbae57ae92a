"""The one data path. The transports (REST, gRPC, the Open Inference Protocol) parse their own wire format,
call ``Gateway.predict`` (through the experiments layer, which wraps it) / ``list_models`` / ``get_model`` /
``readiness``, and map the typed errors back with the one error table (``errors.py``).

A prediction: check the name against the catalog -> take a slot of the model's in-flight cap (over it: 429
before the body is even read) -> read the body, check the version, topk and the image header (so nothing
malformed reaches TorchServe) -> route to the model's backend, which loads the model if needed and calls it
within the deadline, once more if TorchServe lost the worker (``backend/``) -> count it in the metrics.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from zooserve.handler.header import ImageError, read_header

from .backend import Backend
from .catalog import Catalog
from .deadline import Deadline
from .errors import BackendError, BadRequest, DeadlineExceeded, GatewayError, Overloaded, check_size, from_status
from .metrics import UNKNOWN_MODEL, Metrics
from .settings import Settings, valid_version

log = logging.getLogger(__name__)
READY_TIMEOUT_S = 2.0
HEALTH_INTERVAL_S = 5.0  # how often each backend is pinged for /readyz's report
CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")  # anything else is replaced, never echoed


def request_id(given: str | None) -> str:
    """The client's request id when it is a sane token, else a fresh one."""
    # 128 random bits as 32 hex digits, as uuid4().hex gave, without building a UUID on every request
    return given if given and CLIENT_REQUEST_ID.fullmatch(given) else secrets.token_hex(16)


ImageReader = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True)
class PredictRequest:
    model: str
    # the image, or how to read it: a transport that streams its body (REST) reads it only for a known model
    image: bytes | ImageReader
    route: str  # the transport, for the metrics: "rest", "grpc", "v2_rest", "v2_grpc", "shadow"
    version: str | None = None
    topk: int | None = None
    request_id: str = field(default_factory=lambda: secrets.token_hex(16))
    timeout_s: float | None = None  # the client's own deadline, when it has one (gRPC)
    # request headers (gRPC: metadata), lower-case names: an experiment's sticky key is read from them
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    score: float


@dataclass(frozen=True)
class Timings:
    total_ms: float
    backend_ms: float
    load_ms: float


@dataclass(frozen=True)
class PredictResult:
    request_id: str
    model: str
    version: str
    weights: str
    pretrained: bool
    label_set: str
    predictions: list[Prediction]
    timings: Timings
    runtime: str  # what ran the model in the worker: eager, compile, onnxruntime or openvino
    experiment: str | None = None  # set when the request named an experiment: which variant answered
    variant: str | None = None


class Gateway:
    def __init__(self, settings: Settings, catalog: Catalog | None = None, metrics: Metrics | None = None):
        self.settings = settings
        self.catalog = catalog or Catalog(settings.catalog_path)
        self.metrics = metrics or Metrics()
        self.backends = {name: Backend(name, backend, settings, self.catalog, self.metrics)
                         for name, backend in settings.backends.items()}
        self._in_flight: Counter[str] = Counter()
        self._watches: list[asyncio.Task] = []
        self.serving = False

    async def start(self) -> None:
        """A first ping of every backend (for /readyz's report), then one every HEALTH_INTERVAL_S."""
        await asyncio.gather(*(backend.ping(READY_TIMEOUT_S) for backend in self.backends.values()))
        self._watches = [asyncio.create_task(b.watch(HEALTH_INTERVAL_S)) for b in self.backends.values()]
        self.serving = True

    async def aclose(self) -> None:
        self.serving = False
        for task in self._watches:
            task.cancel()
        await asyncio.gather(*self._watches, return_exceptions=True)
        await asyncio.gather(*(backend.aclose() for backend in self.backends.values()))

    def backend_of(self, model: str) -> Backend:
        return self.backends[self.settings.backend_for(model)]

    # --- predictions ---

    async def predict(self, request: PredictRequest) -> PredictResult:
        """One prediction, counted in the metrics whatever its outcome."""
        started = time.perf_counter()
        label = request.model if request.model in self.catalog else UNKNOWN_MODEL
        status = 500
        try:
            result = await self._predict(request, started)
            status = 200
            return result
        except GatewayError as error:
            status = error.status
            raise
        finally:
            series = self.metrics.of(label)
            series.requests(request.route, status).inc()
            series.request_duration.observe(time.perf_counter() - started)

    async def _predict(self, request: PredictRequest, started: float) -> PredictResult:
        info = self.catalog.info(request.model)  # NotFound with close matches, before the body is even read
        deadline = Deadline(min(self.settings.request_timeout_s, request.timeout_s or float("inf")))
        # the slot first: a request over the cap is refused before its body is read, so a burst costs no
        # buffering, and a slot's body is read within the deadline, so a slow upload cannot hold it for long
        with self._slot(request.model):
            try:
                if not isinstance(request.image, bytes):
                    async with asyncio.timeout(deadline.remaining()):
                        request = replace(request, image=await request.image())
                self.metrics.body_bytes.observe(len(request.image))
                self._validate(request, info.num_classes)
                reply, backend_s, load_s = await self.backend_of(request.model).predict(
                    request.model, request.version, request.image, request.topk, deadline)
            except (DeadlineExceeded, TimeoutError):
                # one message wherever the time ran out: in the gateway, on the way, or inside TorchServe
                raise DeadlineExceeded(
                    f"no answer for {request.model!r} within the deadline of {deadline.seconds:g} s") from None
        timings = Timings(round((time.perf_counter() - started) * 1000, 3), round(backend_s * 1000, 3),
                          round(load_s * 1000, 3))
        return _result(request.request_id, reply, timings)

    @contextmanager
    def _slot(self, model: str) -> Iterator[None]:
        """One of the model's in-flight slots, or Overloaded when all are taken."""
        cap = self.settings.max_in_flight_per_model
        if self._in_flight[model] >= cap:
            raise Overloaded(f"too many requests in flight for {model!r} (at most {cap}); "
                             f"retry after {self.settings.retry_after_s} s")
        self._in_flight[model] += 1
        in_flight = self.metrics.of(model).in_flight
        in_flight.inc()
        try:
            yield
        finally:
            self._in_flight[model] -= 1
            in_flight.dec()

    def _validate(self, request: PredictRequest, num_classes: int) -> None:
        """Everything checkable here is checked here: nothing malformed reaches TorchServe."""
        check_version(request.version)
        if request.topk is not None and not 1 <= request.topk <= num_classes:
            raise BadRequest(f"topk must be a whole number from 1 to {num_classes}, not {str(request.topk)!r}",
                             code="bad_topk")
        check_size(len(request.image), self.settings.max_body_bytes)
        try:  # the handler's own header check: same errors, and bombs refused before any decoding
            read_header(request.image, self.settings.max_pixels)
        except ImageError as error:
            raise from_status(error.status, error.code, error.message) from None

    # --- the catalog ---

    async def list_models(self) -> list[dict[str, Any]]:
        loaded = await self._loaded()
        return [self._describe(name, loaded) for name in self.catalog.names]

    async def get_model(self, name: str) -> dict[str, Any]:
        self.catalog.info(name)  # NotFound first: no backend call for a bad name
        return self._describe(name, await self._loaded())

    def _describe(self, name: str, loaded: set[str]) -> dict[str, Any]:
        entry = self.catalog.entry(name)
        archive = entry.get("archive") or {}  # which weights serve: what the archive in the store carries
        return entry | {"loaded": name in loaded, "backend": self.settings.backend_for(name),
                        "weights": archive.get("weights")}

    async def _loaded(self) -> set[str]:
        """Models loaded on their backends; a backend that cannot say counts as having none."""
        async def of(backend: Backend) -> list[str]:
            try:
                await backend.models.sync(READY_TIMEOUT_S)
            except GatewayError as error:
                log.warning("cannot list the models of backend %s: %s", backend.name, error.message)
                return []
            return backend.models.loaded

        lists = await asyncio.gather(*(of(b) for b in self.backends.values()))
        return {name for names in lists for name in names}

    # --- health ---

    def readiness(self) -> tuple[bool, dict[str, bool]]:
        """Whether the gateway routes requests (settings and catalog read, serving), and whether each backend
        answered its last ping. Readiness needs no backend: one that is down fails only its own models' requests
        (503 with Retry-After), and a gateway taken out of its Service for it would fail every model's."""
        return self.serving, {name: bool(backend.answers) for name, backend in self.backends.items()}

    async def model_ready(self, name: str) -> bool:
        """Servable now: in the catalog and its backend answers a ping now (it is registered on first use)."""
        self.catalog.info(name)
        return await self.backend_of(name).ping(READY_TIMEOUT_S)


def check_version(version: str | None) -> None:
    """BadRequest for a version that is no archive version's form (None: the default version)."""
    if version is not None and not valid_version(version):
        raise BadRequest(f"bad version {version[:80]!r}: letters, digits, '.', '_', '-' only", code="bad_version")


def _result(request_id: str, reply: dict[str, Any], timings: Timings) -> PredictResult:
    try:
        return PredictResult(
            request_id=request_id, model=reply["model"], version=reply["version"], weights=reply["weights"],
            pretrained=reply["pretrained"], label_set=reply["label_set"],
            predictions=[Prediction(p["index"], p["label"], p["score"]) for p in reply["predictions"]],
            timings=timings, runtime=reply["runtime"],
        )
    except (KeyError, TypeError) as error:
        raise BackendError(f"backend answered without {error}") from None
