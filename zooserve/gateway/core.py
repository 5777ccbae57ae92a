"""The one data path. REST and gRPC (and the Open Inference Protocol later) parse their own wire format,
call ``Gateway.predict`` / ``list_models`` / ``get_model`` / ``ready``, and map the typed errors back.

A prediction: check the name against the catalog -> take a slot of the model's in-flight cap (over it: 429
before the body is even read) -> read the body, check the version, topk and the image header (so nothing
malformed reaches TorchServe) -> route to the model's backend -> load the model there if needed -> call it
within the deadline, once more if TorchServe lost the worker (``dispatch.py``) -> count it in the metrics.
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

from zooserve.handler.decode import ImageError, read_header
from zooserve.zoo.labels import class_names

from .backend import TorchServeBackend
from .catalog import Catalog
from .deadline import Deadline
from .dispatch import call_backend
from .errors import (
    BackendError,
    BadRequest,
    Conflict,
    DeadlineExceeded,
    GatewayError,
    NotFound,
    Overloaded,
    TooLarge,
    Unprocessable,
    from_status,
)
from .experiments.config import Experiment
from .experiments.router import ExperimentRouter
from .experiments.store import DuplicateFeedbackError, Record, RecordStore, UnknownRequestError
from .metrics import UNKNOWN_MODEL, Metrics
from .models import ModelManager
from .settings import Settings, valid_version

log = logging.getLogger(__name__)
READY_TIMEOUT_S = 2.0
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
    route: str  # the transport, for the metrics: "rest", "grpc"
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
    experiment: str | None = None  # set when the request named an experiment: which variant answered
    variant: str | None = None


class Gateway:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.catalog = Catalog()
        self.metrics = Metrics()
        self.backends = {
            name: TorchServeBackend(name, backend, settings.backend_protocol)
            for name, backend in settings.backends.items()
        }
        self.models = {name: ModelManager(b, settings, self.catalog, self.metrics) for name, b in self.backends.items()}
        self._in_flight: Counter[str] = Counter()
        # A/B experiments: only with an experiments file (a bad one at start-up is an error: ExperimentConfigError)
        self.store: RecordStore | None = None
        self.experiments: ExperimentRouter | None = None
        if settings.experiments_file is not None:
            self.store = RecordStore(settings.records_path, settings.database_url, settings.record_flush_interval_s,
                                     settings.record_bucket_s)
            self.experiments = ExperimentRouter(settings.experiments_file, self.catalog.names, self.store)
        self._shadows: set[asyncio.Task] = set()
        self._loops: list[asyncio.Task] = []

    async def start(self) -> None:
        """Background work: the record store's writer, the experiments file watcher and the guardrails."""
        if self.experiments is not None:
            await self.store.start()
            await self.experiments.refresh()  # the state the other replicas agreed on, before the first request
            self._loops = [
                asyncio.create_task(self.experiments.watch(self.settings.experiments_reload_interval_s)),
                asyncio.create_task(self.experiments.guard(self.settings.guardrail_interval_s)),
                asyncio.create_task(self.experiments.follow(self.settings.experiment_state_interval_s)),
            ]

    async def aclose(self) -> None:
        for task in self._loops:
            task.cancel()
        if self._shadows:  # shadows get their own timeout to finish (and be recorded), then are cancelled
            await asyncio.wait(set(self._shadows), timeout=self.settings.shadow_timeout_s)
            for task in self._shadows:
                task.cancel()
        await asyncio.gather(*self._loops, *self._shadows, return_exceptions=True)
        if self.store is not None:
            await self.store.close()  # flushes: every answered experiment request is in the database
        await asyncio.gather(*(backend.aclose() for backend in self.backends.values()))

    # --- predictions ---

    async def predict(self, request: PredictRequest) -> PredictResult:
        experiment = self.experiments.get(request.model) if self.experiments is not None else None
        if experiment is not None:
            return await self._predict_experiment(request, experiment)
        return await self._predict_model(request)

    async def _predict_model(self, request: PredictRequest) -> PredictResult:
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
                name = self.settings.backend_for(request.model)
                reply, backend_s, load_s = await call_backend(
                    self.backends[name], self.models[name], self.metrics, request.model, request.version,
                    request.image, request.topk, deadline)
            except (DeadlineExceeded, TimeoutError) as error:
                if isinstance(error, DeadlineExceeded) and error.code != DeadlineExceeded.default_code:
                    raise  # a more precise one (the model is still loading)
                # one message wherever the time ran out: in the gateway, on the way, or inside TorchServe
                raise DeadlineExceeded(
                    f"no answer for {request.model!r} within the deadline of {deadline.seconds:g} s") from None
        timings = Timings(round((time.perf_counter() - started) * 1000, 3), round(backend_s * 1000, 3),
                          round(load_s * 1000, 3))
        return _result(request.request_id, reply, timings)

    # --- experiments ---

    async def _predict_experiment(self, request: PredictRequest, experiment: Experiment) -> PredictResult:
        """Picks a variant (sticky by the experiment's key header, or at random), serves it through the normal
        model path, records the answer (errors too) and sends copies to the shadows off the request path."""
        started, created = time.perf_counter(), time.time()
        key = request.headers.get(experiment.assignment.key.lower())
        name = self.experiments.choose(experiment, key)
        variant = experiment.variant(name)
        status, result = 500, None
        try:
            if request.version is not None:
                raise BadRequest(f"{experiment.name!r} is an experiment: its variants choose the version",
                                 code="bad_version")
            # read inside the variant's slot, as any body; kept for the shadows
            image = request.image if isinstance(request.image, bytes) else _ReadOnce(request.image)
            result = await self._predict_model(replace(request, model=variant.model, version=variant.version,
                                                       image=image))
            image = image if isinstance(image, bytes) else image.data
            status = 200
        except GatewayError as error:
            status, error.variant = error.status, name  # the transports name the variant in errors too
            raise
        finally:
            top1 = result.predictions[0] if result and result.predictions else None
            self.experiments.record(Record(
                request_id=request.request_id, kind="primary", created=created, experiment=experiment.name,
                variant=name, model=variant.model, status=status,
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
                top1_index=top1.index if top1 else None, top1_label=top1.label if top1 else None,
                top1_score=top1.score if top1 else None,
            ))
        for shadow in experiment.shadows:
            if shadow != variant.model:
                self._start_shadow(experiment, name, shadow, image, request.request_id, top1)
        return replace(result, request_id=request.request_id, experiment=experiment.name, variant=name)

    def _start_shadow(self, experiment: Experiment, variant: str, model: str, image: bytes, rid: str,
                      primary: Prediction | None) -> None:
        if len(self._shadows) >= self.settings.max_shadows_in_flight:
            log.warning("experiment %s: shadow %s skipped, %d shadow calls in flight already", experiment.name,
                        model, len(self._shadows))
            return
        task = asyncio.create_task(self._shadow(experiment, variant, model, image, rid, primary))
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def _shadow(self, experiment: Experiment, variant: str, model: str, image: bytes, rid: str,
                      primary: Prediction | None) -> None:
        """A copy of the request to a shadow model, after the primary answered; bounded by its own timeout,
        its outcome only recorded (agrees: same top-1 as the primary)."""
        timeout = self.settings.shadow_timeout_s
        started, created = time.perf_counter(), time.time()
        status, top1 = 500, None
        try:
            result = await asyncio.wait_for(self._predict_model(PredictRequest(
                model=model, image=image, route="shadow", topk=1, request_id=rid, timeout_s=timeout,
            )), timeout)
            status, top1 = 200, result.predictions[0]
        except GatewayError as error:
            status = error.status
        except asyncio.TimeoutError:
            status = DeadlineExceeded.status
        except Exception:
            log.exception("experiment %s: shadow %s failed", experiment.name, model)
        self.experiments.record(Record(
            request_id=rid, kind="shadow", created=created, experiment=experiment.name, variant=variant,
            model=model, status=status, latency_ms=round((time.perf_counter() - started) * 1000, 3),
            top1_index=top1.index if top1 else None, top1_label=top1.label if top1 else None,
            top1_score=top1.score if top1 else None,
            agrees=None if top1 is None or primary is None else top1.index == primary.index,
        ))

    async def feedback(self, request_id: str, label: int | str) -> dict[str, Any]:
        """Records the true label (a class index, or a class name of the model's label set) of an experiment
        request: NotFound for an unknown request id, Unprocessable for a bad label, Conflict for a second one."""
        found = await self.store.request(request_id) if self.store is not None else None
        if found is None:
            raise NotFound(f"no experiment request with id {request_id[:128]!r}", code="unknown_request")
        experiment, model = found
        names = class_names(self.catalog.info(model).label_set)
        if isinstance(label, str) and not label.isdigit():
            if label not in names:
                raise Unprocessable(f"label {label[:80]!r} is not a class of {model!r} ({names[0]!r}, ...)",
                                    code="bad_label")
            index = names.index(label)
        else:
            index = int(label)
            if not 0 <= index < len(names):
                raise Unprocessable(f"label {index} is not a class index of {model!r} (0 to {len(names) - 1})",
                                    code="bad_label")
        try:
            await self.store.add_feedback(request_id, index)
        except DuplicateFeedbackError:
            raise Conflict(f"request {request_id!r} already has feedback; a label is recorded once") from None
        except UnknownRequestError:
            raise NotFound(f"no experiment request with id {request_id[:128]!r}", code="unknown_request") from None
        return {"request_id": request_id, "experiment": experiment, "model": model, "label_index": index,
                "label": names[index]}

    def experiment(self, name: str) -> Experiment:
        found = self.experiments.get(name) if self.experiments is not None else None
        if found is None:
            raise NotFound(f"no experiment named {name[:128]!r}", code="unknown_experiment")
        return found

    def describe_experiments(self) -> dict[str, Any]:
        """The running experiments with their current weights and stopped variants, and the file's state."""
        router = self.experiments
        if router is None:
            return {"file": None, "last_error": None, "experiments": []}
        return {"file": str(router.path), "last_error": router.last_error,
                "experiments": [self.describe_experiment(name) for name in router.names()]}

    def describe_experiment(self, name: str) -> dict[str, Any]:
        experiment, router = self.experiment(name), self.experiments
        state = router.states[name]
        weights = router.weights(experiment)
        stopped = {v: s.stopped_reason for v, s in state.variants.items() if s.stopped_reason}
        return experiment.model_dump() | {
            "variants": [v.model_dump() | {"current_weight": weights[v.name], "stopped": stopped.get(v.name)}
                         for v in experiment.variants],
            "events": list(state.events),
        }

    async def report(self, name: str) -> dict[str, Any]:
        self.experiment(name)
        return await self.experiments.report(name)

    async def restore(self, name: str, variant: str) -> dict[str, Any]:
        self._variant(name, variant)
        await self.experiments.restore(name, variant)
        return self.describe_experiment(name)

    async def stop_variant(self, name: str, variant: str, reason: str) -> dict[str, Any]:
        """An operator stops a variant on every replica (Conflict for the control: it is what the others are
        compared with)."""
        if self._variant(name, variant) == self.experiment(name).control:
            raise Conflict(f"{variant!r} is the control of {name!r}: it cannot be stopped", code="control_variant")
        await self.experiments.stop(name, variant, f"stopped by an operator: {reason}")
        return self.describe_experiment(name)

    def _variant(self, name: str, variant: str) -> str:
        if variant not in {v.name for v in self.experiment(name).variants}:
            raise NotFound(f"experiment {name!r} has no variant {variant[:128]!r}", code="unknown_variant")
        return variant

    def reload_experiments(self) -> dict[str, Any]:
        """Reads this replica's experiments file now (each replica also rereads it when it changes)."""
        if self.experiments is None:
            raise NotFound("no experiments file is configured (ZOO_EXPERIMENTS_FILE)", code="no_experiments")
        self.experiments.reload()
        return self.describe_experiments()

    @contextmanager
    def _slot(self, model: str) -> Iterator[None]:
        """One of the model's in-flight slots, or Overloaded when all are taken."""
        cap = self.settings.max_in_flight_per_model
        if self._in_flight[model] >= cap:
            raise Overloaded(f"too many requests in flight for {model!r} (at most {cap}); "
                             f"retry after {self.settings.retry_after_s} s", retry_after_s=self.settings.retry_after_s)
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
        if request.version is not None and not valid_version(request.version):
            raise BadRequest(f"bad version {request.version[:80]!r}: letters, digits, '.', '_', '-' only",
                             code="bad_version")
        if request.topk is not None and not 1 <= request.topk <= num_classes:
            raise BadRequest(f"topk must be a whole number from 1 to {num_classes}, not {str(request.topk)!r}",
                             code="bad_topk")
        self.check_body_size(len(request.image))
        try:  # the handler's own header check: same errors, and bombs refused before any decoding
            read_header(request.image, self.settings.max_pixels)
        except ImageError as error:
            raise from_status(error.status, error.code, error.message) from None

    def check_body_size(self, size: int, complete: bool = True) -> None:
        """Transports call this early too: with the declared size, or the size read so far (not complete)."""
        limit = self.settings.max_body_bytes
        if size > limit:
            raise TooLarge(f"body too large: {size} bytes > limit of {limit} bytes" if complete
                           else f"body too large: more than the limit of {limit} bytes")

    # --- the catalog ---

    async def list_models(self) -> list[dict[str, Any]]:
        loaded = await self._loaded()
        return [self._describe(name, loaded) for name in self.catalog.names]

    async def get_model(self, name: str) -> dict[str, Any]:
        self.catalog.info(name)  # NotFound first: no backend call for a bad name
        return self._describe(name, await self._loaded())

    def _describe(self, name: str, loaded: set[str]) -> dict[str, Any]:
        return self.catalog.entry(name) | {"loaded": name in loaded, "backend": self.settings.backend_for(name)}

    async def _loaded(self) -> set[str]:
        """Models loaded on their backends; a backend that cannot say counts as having none."""
        async def of(models: ModelManager) -> list[str]:
            try:
                await models.sync(READY_TIMEOUT_S)
            except GatewayError as error:
                log.warning("cannot list the models of backend %s: %s", models.backend.name, error.message)
                return []
            return models.loaded

        lists = await asyncio.gather(*(of(m) for m in self.models.values()))
        return {name for names in lists for name in names}

    # --- health ---

    async def ready(self) -> dict[str, bool]:
        """Whether each backend answers its /ping now."""
        names = list(self.backends)
        answers = await asyncio.gather(*(self.backends[n].ping(READY_TIMEOUT_S) for n in names))
        return dict(zip(names, answers, strict=True))


class _ReadOnce:
    """A body reader that reads once and keeps the bytes (an experiment's shadows need them afterwards)."""

    def __init__(self, read: ImageReader):
        self._read = read
        self.data: bytes | None = None

    async def __call__(self) -> bytes:
        if self.data is None:
            self.data = await self._read()
        return self.data


def _result(request_id: str, reply: dict[str, Any], timings: Timings) -> PredictResult:
    try:
        return PredictResult(
            request_id=request_id, model=reply["model"], version=reply["version"], weights=reply["weights"],
            pretrained=reply["pretrained"], label_set=reply["label_set"],
            predictions=[Prediction(p["index"], p["label"], p["score"]) for p in reply["predictions"]],
            timings=timings,
        )
    except (KeyError, TypeError) as error:
        raise BackendError(f"backend answered without {error}") from None
