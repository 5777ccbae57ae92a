"""One prediction call to a model's backend, with the model loaded there and the failures worth a retry retried.

A prediction has no side effect, so it may be sent again when the backend failed it for a reason that the
next try does not share:

- the backend lost the model (TorchServe restarted, or someone unregistered it): load it again, then retry;
- the worker running the request died (TorchServe restarts it and queues requests until it is up), or the
  model has no worker for a moment: retry once after ``RETRY_BACKOFF_S``.

Each happens at most once per request, always within the request's deadline, and is counted in
``zoo_backend_retries_total``. Any other failure is the client's answer at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from .backend import ModelNotRegistered, TorchServeBackend, WorkerLost
from .deadline import Deadline
from .errors import BackendError
from .metrics import Metrics
from .models import ModelManager

log = logging.getLogger(__name__)
# Short: a retried request waits in TorchServe's queue for the restarted worker, so waiting here buys
# nothing; the pause only keeps a dying model from being hammered in a tight loop.
RETRY_BACKOFF_S = 0.25


async def call_backend(backend: TorchServeBackend, models: ModelManager, metrics: Metrics, model: str,
                       version: str | None, image: bytes, topk: int | None,
                       deadline: Deadline) -> tuple[dict[str, Any], float, float]:
    """The handler's answer, the seconds spent in backend calls and the seconds spent loading the model."""
    backend_s = load_s = 0.0
    reloaded = retried = False
    while True:
        async with models.use(model, deadline) as loading:  # in use: never unloaded under us, pause included
            load_s += loading
            started, pause = time.perf_counter(), False
            try:
                reply = await backend.predict(model, version, image, topk, deadline.remaining())
                return reply, backend_s + time.perf_counter() - started, load_s
            except ModelNotRegistered:
                if reloaded:
                    raise BackendError(f"backend {backend.name!r} does not keep {model!r} loaded") from None
                reloaded = True
                log.warning("backend %s lost %s; loading it again", backend.name, model)
                models.forget(model)
                metrics.retries.labels(model, "model_lost").inc()
            except WorkerLost as lost:
                if retried or _seconds_left(deadline) <= RETRY_BACKOFF_S:
                    raise lost.error from None
                retried = pause = True
                log.warning("backend %s: %s; sending the request once more", backend.name, lost.error.message)
                metrics.retries.labels(model, lost.reason).inc()
            finally:
                elapsed = time.perf_counter() - started
                metrics.of(model).backend_duration.observe(elapsed)
            backend_s += elapsed
            if pause:
                await asyncio.sleep(RETRY_BACKOFF_S)


def _seconds_left(deadline: Deadline) -> float:
    return deadline.at - time.monotonic()
