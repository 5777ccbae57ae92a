"""The experiments layer: A/B experiments around the core's predict, which knows nothing of them.

Every transport's prediction goes through ``Experiments.predict``: a model's name goes straight on to the
core; an experiment's name picks a variant (sticky by the experiment's key header, or at random), is served
by the core as that variant's model (same checks, caps, deadline and metrics), is recorded (errors too), and
its shadows get a copy off the request path. Feedback, the running experiments, reports and the operator's
controls (stop, restore, reload: the state every replica shares, router.py) are here too; without an
experiments file there are no experiments and ``predict`` is the core's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

from ..core import Gateway, ImageReader, Prediction, PredictRequest, PredictResult
from ..errors import BadRequest, Conflict, DeadlineExceeded, GatewayError, NotFound, Unprocessable
from ..settings import Settings
from .config import Experiment
from .metrics import ExperimentMetrics
from .router import ExperimentRouter
from .store import DuplicateFeedbackError, Record, RecordStore, UnknownRequestError

log = logging.getLogger(__name__)


class Experiments:
    def __init__(self, core: Gateway, settings: Settings, metrics: ExperimentMetrics):
        self.core, self.settings = core, settings
        # only with an experiments file (a bad one at start-up is an error: ExperimentConfigError)
        self.store: RecordStore | None = None
        self.router: ExperimentRouter | None = None
        if settings.experiments_file is not None:
            self.store = RecordStore(settings.records_path, settings.database_url, settings.record_flush_interval_s,
                                     settings.record_bucket_s)
            self.router = ExperimentRouter(settings.experiments_file, core.catalog.names, self.store,
                                           metrics=metrics)
        self._shadows: set[asyncio.Task] = set()
        self._loops: list[asyncio.Task] = []

    async def start(self) -> None:
        """The record store's writer, the shared state as the other replicas left it, then the experiments file
        watcher, the guardrails and the shared state's reader."""
        if self.router is not None:
            await self.store.start()
            await self.router.refresh()  # the state the other replicas agreed on, before the first request
            self._loops = [
                asyncio.create_task(self.router.watch(self.settings.experiments_reload_interval_s)),
                asyncio.create_task(self.router.guard(self.settings.guardrail_interval_s)),
                asyncio.create_task(self.router.follow(self.settings.experiment_state_interval_s)),
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

    def get(self, name: str) -> Experiment | None:
        return self.router.get(name) if self.router is not None else None

    def knows(self, name: str) -> bool:
        """Whether ``name`` is a model's or an experiment's: a name the gateway may write (metrics, logs)."""
        return name in self.core.catalog or self.get(name) is not None

    # --- predictions ---

    async def predict(self, request: PredictRequest) -> PredictResult:
        experiment = self.get(request.model)
        if experiment is None:
            return await self.core.predict(request)
        return await self._predict_experiment(request, experiment)

    async def _predict_experiment(self, request: PredictRequest, experiment: Experiment) -> PredictResult:
        started, created = time.perf_counter(), time.time()
        key = request.headers.get(experiment.assignment.key.lower())
        name = self.router.choose(experiment, key)
        variant = experiment.variant(name)
        status, result = 500, None
        try:
            if request.version is not None:
                raise BadRequest(f"{experiment.name!r} is an experiment: its variants choose the version",
                                 code="bad_version")
            # read inside the variant's slot, as any body; kept for the shadows
            image = request.image if isinstance(request.image, bytes) else _ReadOnce(request.image)
            result = await self.core.predict(replace(request, model=variant.model, version=variant.version,
                                                     image=image))
            image = image if isinstance(image, bytes) else image.data
            status = 200
        except GatewayError as error:
            status, error.variant = error.status, name  # the transports name the variant in errors too
            raise
        finally:
            top1 = result.predictions[0] if result and result.predictions else None
            self.router.record(_record(request.request_id, "primary", created, experiment.name, name, variant.model,
                                       status, started, top1))
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
            result = await asyncio.wait_for(self.core.predict(PredictRequest(
                model=model, image=image, route="shadow", topk=1, request_id=rid, timeout_s=timeout,
            )), timeout)
            status, top1 = 200, result.predictions[0]
        except GatewayError as error:
            status = error.status
        except asyncio.TimeoutError:
            status = DeadlineExceeded.status
        except Exception:
            log.exception("experiment %s: shadow %s failed", experiment.name, model)
        agrees = None if top1 is None or primary is None else top1.index == primary.index
        self.router.record(_record(rid, "shadow", created, experiment.name, variant, model, status, started, top1,
                                   agrees))

    # --- feedback, and the experiments as they run ---

    async def feedback(self, request_id: str, label: int | str) -> dict[str, Any]:
        """Records the true label (a class index, or a class name of the model's label set) of an experiment
        request: NotFound for an unknown request id, Unprocessable for a bad label, Conflict for a second one."""
        found = await self.store.request(request_id) if self.store is not None else None
        if found is None:
            raise NotFound(f"no experiment request with id {request_id[:128]!r}", code="unknown_request")
        experiment, model = found
        names = self.core.catalog.class_names(model)
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
        found = self.get(name)
        if found is None:
            raise NotFound(f"no experiment named {name[:128]!r}", code="unknown_experiment")
        return found

    def describe_all(self) -> dict[str, Any]:
        """The running experiments with their current weights and stopped variants, and the file's state."""
        router = self.router
        if router is None:
            return {"file": None, "last_error": None, "experiments": []}
        return {"file": str(router.path), "last_error": router.last_error,
                "experiments": [self.describe(name) for name in router.names()]}

    def describe(self, name: str) -> dict[str, Any]:
        experiment, router = self.experiment(name), self.router
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
        return await self.router.report(name)

    async def restore(self, name: str, variant: str) -> dict[str, Any]:
        """An operator gives a stopped variant its configured traffic again, on every replica."""
        self._variant(name, variant)
        await self.router.restore(name, variant)
        return self.describe(name)

    async def stop(self, name: str, variant: str, reason: str) -> dict[str, Any]:
        """An operator stops a variant on every replica (Conflict for the control: it is what the others are
        compared with)."""
        if self._variant(name, variant) == self.experiment(name).control:
            raise Conflict(f"{variant!r} is the control of {name!r}: it cannot be stopped", code="control_variant")
        await self.router.stop(name, variant, f"stopped by an operator: {reason}")
        return self.describe(name)

    def _variant(self, name: str, variant: str) -> str:
        if variant not in {v.name for v in self.experiment(name).variants}:
            raise NotFound(f"experiment {name!r} has no variant {variant[:128]!r}", code="unknown_variant")
        return variant

    def reload(self) -> dict[str, Any]:
        """Reads this replica's experiments file now (each replica also rereads it when it changes)."""
        if self.router is None:
            raise NotFound("no experiments file is configured (ZOO_EXPERIMENTS_FILE)", code="no_experiments")
        self.router.reload()
        return self.describe_all()


def _record(rid: str, kind: str, created: float, experiment: str, variant: str, model: str, status: int,
            started: float, top1: Prediction | None, agrees: bool | None = None) -> Record:
    return Record(
        request_id=rid, kind=kind, created=created, experiment=experiment, variant=variant, model=model,
        status=status, latency_ms=round((time.perf_counter() - started) * 1000, 3),
        top1_index=top1.index if top1 else None, top1_label=top1.label if top1 else None,
        top1_score=top1.score if top1 else None, agrees=agrees,
    )


class _ReadOnce:
    """A body reader that reads once and keeps the bytes (an experiment's shadows need them afterwards)."""

    def __init__(self, read: ImageReader):
        self._read = read
        self.data: bytes | None = None

    async def __call__(self) -> bytes:
        if self.data is None:
            self.data = await self._read()
        return self.data
