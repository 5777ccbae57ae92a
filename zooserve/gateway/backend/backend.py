"""One TorchServe backend, by name: its inference client (HTTP or gRPC), its management API and the models
loaded there, its retry policy and whether it answers.

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
from typing import Any, Protocol

from ..catalog import Catalog
from ..deadline import Deadline
from ..errors import BackendError
from ..metrics import Metrics
from ..settings import BackendSettings, Settings
from .calls import KeyRing
from .errors import ModelNotRegistered, WorkerLost
from .grpc_inference import GrpcInference
from .http_inference import HttpInference
from .management import Management
from .models import ModelManager

log = logging.getLogger(__name__)
# Short: a retried request waits in TorchServe's queue for the restarted worker, so waiting here buys
# nothing; the pause only keeps a dying model from being hammered in a tight loop.
RETRY_BACKOFF_S = 0.25
PING_TIMEOUT_S = 2.0


class Inference(Protocol):
    """What a transport to TorchServe's inference API does (``HttpInference``, ``GrpcInference``)."""

    async def predict(self, model: str, version: str | None, image: bytes, topk: int | None,
                      timeout: float) -> dict[str, Any]: ...

    async def ping(self, timeout: float) -> bool: ...

    async def aclose(self) -> None: ...


class Backend:
    def __init__(self, name: str, settings: BackendSettings, gateway: Settings, catalog: Catalog, metrics: Metrics):
        self.name, self.settings, self.metrics = name, settings, metrics
        self.keys = KeyRing(settings.key_dir)
        transport = GrpcInference if gateway.backend_protocol == "grpc" else HttpInference
        self.inference: Inference = transport(name, settings, self.keys)
        self.management = Management(name, settings, self.keys)
        self.models = ModelManager(self.management, settings.memory_budget_bytes, gateway, catalog, metrics)
        self.answers: bool | None = None  # whether it answered its last ping (None: not asked yet)

    async def predict(self, model: str, version: str | None, image: bytes, topk: int | None,
                      deadline: Deadline) -> tuple[dict[str, Any], float, float]:
        """The handler's answer, the seconds spent in prediction calls and the seconds spent loading the model."""
        backend_s = load_s = 0.0
        reloaded = retried = False
        while True:
            async with self.models.use(model, deadline) as loading:  # never unloaded under us, pause included
                load_s += loading
                started, pause = time.perf_counter(), False
                try:
                    reply = await self.inference.predict(model, version, image, topk, deadline.remaining())
                    return reply, backend_s + time.perf_counter() - started, load_s
                except ModelNotRegistered:
                    if reloaded:
                        raise BackendError(f"backend {self.name!r} does not keep {model!r} loaded") from None
                    reloaded = True
                    log.warning("backend %s lost %s; loading it again", self.name, model)
                    self.models.forget(model)
                    self.metrics.retries.labels(model, "model_lost").inc()
                except WorkerLost as lost:
                    if retried or deadline.at - time.monotonic() <= RETRY_BACKOFF_S:
                        raise lost.error from None
                    retried = pause = True
                    log.warning("backend %s: %s; sending the request once more", self.name, lost.error.message)
                    self.metrics.retries.labels(model, lost.reason).inc()
                finally:
                    elapsed = time.perf_counter() - started
                    self.metrics.of(model).backend_duration.observe(elapsed)
                backend_s += elapsed
                if pause:
                    await asyncio.sleep(RETRY_BACKOFF_S)

    async def ping(self, timeout: float = PING_TIMEOUT_S) -> bool:
        """Whether TorchServe answers its ping now; remembered in ``answers``."""
        self.answers = await self.inference.ping(timeout)
        return self.answers

    async def watch(self, interval_s: float) -> None:
        """Pings every ``interval_s`` seconds, for /readyz's report (readiness itself does not wait for it)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.ping()
            except Exception:  # a probe must never end the loop
                log.exception("pinging backend %s failed", self.name)

    async def aclose(self) -> None:
        self.management.close()
        await self.inference.aclose()
