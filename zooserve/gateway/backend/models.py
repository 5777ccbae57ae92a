"""Which models are loaded on a backend: load on first use, unload the least recently used under a budget.

Every catalog model is servable without preloading all of them: a request for a model the backend does
not have registers its archive through the management API (the gateway is the only client of that API),
and models nobody has used for longest are unregistered first when the next one would not fit in the
backend's memory budget. A model with requests in flight is never unloaded.

Memory is estimated before a load from the catalog snapshot (``zooserve/snapshot.py``: a TorchServe worker
costs ~800 MB before its model; weights and activations about twice the float32 weights; times the
archive's workers), so the budget holds without asking the backend.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..catalog import Catalog
from ..deadline import Deadline
from ..errors import BackendUnavailable, DeadlineExceeded, ModelLoading, Overloaded, OverMemoryBudget
from ..metrics import Metrics
from ..settings import GiB, Settings
from .management import Management

log = logging.getLogger(__name__)
SYNC_TIMEOUT_S = 5.0
UNLOAD_TIMEOUT_S = 60.0


class ModelManager:
    """The models of one backend, least recently used first."""

    def __init__(self, management: Management, budget: int, settings: Settings, catalog: Catalog, metrics: Metrics):
        self.management = management
        self.name = management.name  # the backend's
        self.settings = settings
        self.catalog = catalog
        self.metrics = metrics
        self.budget = budget
        self._loaded: OrderedDict[str, int] = OrderedDict()  # name -> estimated bytes, LRU first
        self._in_use: Counter[str] = Counter()
        self._loading: dict[str, asyncio.Task] = {}
        self._load_started: dict[str, float] = {}  # when the load in progress was asked for (monotonic)
        self._load_seconds: dict[str, float] = {}  # how long the last load of each model took, queue included
        self._load_lock = asyncio.Lock()  # one load at a time: loads compete for the same cores and memory
        self._synced = False

    @property
    def loaded(self) -> list[str]:
        return list(self._loaded)

    @asynccontextmanager
    async def use(self, name: str, deadline: Deadline) -> AsyncIterator[float]:
        """Holds ``name`` loaded (never unloaded meanwhile); yields the seconds spent loading it."""
        self._in_use[name] += 1
        try:
            yield await self._ensure_loaded(name, deadline)
        finally:
            self._in_use[name] -= 1

    def forget(self, name: str) -> None:
        """The backend does not have ``name`` after all (it restarted, or someone unregistered it)."""
        self._loaded.pop(name, None)
        self._update_gauges()

    async def sync(self, timeout: float = SYNC_TIMEOUT_S) -> None:
        """Learns what the backend has registered (models survive a gateway restart)."""
        fresh: OrderedDict[str, int] = OrderedDict()
        for name in await self.management.registered_models(timeout):
            fresh[name] = self._loaded.get(name) or self.catalog.memory_bytes(name)
        for name in self._loaded:  # keep the known recency order
            if name in fresh:
                fresh.move_to_end(name)
        self._loaded = fresh
        self._synced = True
        self._update_gauges()

    async def _ensure_loaded(self, name: str, deadline: Deadline) -> float:
        if not self._synced:
            await self.sync(min(SYNC_TIMEOUT_S, deadline.remaining()))
        if name in self._loaded:
            self._loaded.move_to_end(name)
            return 0.0
        started = time.monotonic()
        task = self._loading.get(name)
        if task is None:  # the first request starts the load; later ones wait for the same one
            task = self._loading[name] = asyncio.create_task(self._load(name))
            task.add_done_callback(self._load_done)
            self._load_started[name] = started
        # A cold start may take longer than a deadline (a large model, or one queued behind other loads): the
        # request waits a bounded while, keeping at least half its deadline for the prediction itself, then
        # is told when to come back. Shielded: the load goes on for the retry (and for the others waiting).
        wait = min(self.settings.load_wait_s, deadline.remaining() / 2)
        try:
            await asyncio.wait_for(asyncio.shield(task), wait)
        except TimeoutError:
            retry_after = self._retry_after(name)
            raise ModelLoading(f"model {name!r} is loading on backend {self.name!r}; retry in {retry_after} s",
                               retry_after_s=retry_after) from None
        return time.monotonic() - started

    def _retry_after(self, name: str) -> int:
        """Seconds until ``name``'s load is expected to end: its last load's duration on this backend less the
        time this one has run; the configured Retry-After where nothing is known (or it is overdue)."""
        elapsed = time.monotonic() - self._load_started.get(name, time.monotonic())
        expected = self._load_seconds.get(name, 0.0) - elapsed
        return max(self.settings.retry_after_s, math.ceil(expected), 1)

    def _load_done(self, task: asyncio.Task) -> None:
        # the exception is retrieved here too: the waiting requests got it, or all of them gave up waiting
        loaded = not task.cancelled() and task.exception() is None
        for name in [n for n, t in self._loading.items() if t is task]:
            del self._loading[name]
            asked = self._load_started.pop(name)
            if loaded:
                self._load_seconds[name] = time.monotonic() - asked

    async def _load(self, name: str) -> None:
        async with self._load_lock:
            if name in self._loaded:
                return
            need = self.catalog.memory_bytes(name)
            await self._make_room(name, need)
            await self._register(name)
            self._loaded[name] = need
            self._update_gauges()

    async def _register(self, name: str) -> None:
        settings = self.settings
        timeout = settings.heavy_load_timeout_s if self.catalog.info(name).heavy else settings.load_timeout_s
        started = time.monotonic()
        outcome = "failed"
        try:
            await self.management.register(name, timeout)
            outcome = "loaded"
        except DeadlineExceeded:
            outcome = "timeout"
            self._synced = False  # it may still come up: ask the backend next time
            raise BackendUnavailable(f"backend {self.name!r} did not load {name!r} within {timeout:g} s",
                                     code="model_unavailable") from None
        finally:
            self.metrics.model_loads.labels(name, outcome).inc()
            self.metrics.model_load_duration.labels(name).observe(time.monotonic() - started)
        log.info("loaded %s on %s in %.1f s", name, self.name, time.monotonic() - started)

    async def _make_room(self, name: str, need: int) -> None:
        if need > self.budget:
            raise OverMemoryBudget(
                f"model {name!r} needs about {need / GiB:.1f} GiB, more than the memory budget of backend "
                f"{self.name!r} ({self.budget / GiB:.1f} GiB)")
        while sum(self._loaded.values()) + need > self.budget:
            victim = next((n for n in self._loaded if not self._in_use[n] and n in self.catalog), None)
            if victim is None:
                raise Overloaded(
                    f"no memory on backend {self.name!r} to load {name!r} beside the models in use",
                    code="memory_busy")
            await self.management.unregister(victim, UNLOAD_TIMEOUT_S)
            del self._loaded[victim]
            self.metrics.model_unloads.labels(victim).inc()
            log.info("unloaded %s from %s to make room for %s", victim, self.name, name)
        self._update_gauges()

    def _update_gauges(self) -> None:
        self.metrics.models_loaded.labels(self.name).set(len(self._loaded))
        self.metrics.memory_reserved.labels(self.name).set(sum(self._loaded.values()))

