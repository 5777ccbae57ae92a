"""The running experiments: reloadable config, current weights (ramps, guardrail stops), assignment.

The experiments layer (``layer.py``) asks ``get(name)`` whether a name is an experiment, ``choose`` for the
variant that serves a request, and hands every answer to ``record``. What the replicas must agree on (ramp weights,
stops, restores, events) lives in the experiment database (state.py): a change made through one replica
is written there, and every replica reads it back every ``refresh`` interval, so all serve the same
weights within that bound. Guardrails are evaluated off the request path from the running totals, by the
one replica that holds the guardrail lease; a breach sets the variant's weight to zero until a person
restores it, and a ramp steps up only on a pass that found its variant within its guardrails.
"""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path
from typing import Iterable

from . import guardrails
from .assign import assign
from .config import Experiment, ExperimentConfigError, ExperimentsFile, load
from .metrics import ExperimentMetrics
from .report import build_report, variant_figures
from .state import GUARDRAIL_LEASE, ExperimentState, SharedState, replica_id
from .store import Record, RecordStore

log = logging.getLogger(__name__)


class ExperimentRouter:
    def __init__(self, path: Path | None, models: Iterable[str], store: RecordStore, seed: int | None = None,
                 replica: str | None = None, metrics: ExperimentMetrics | None = None):
        self.path = path
        self.metrics = metrics or ExperimentMetrics()
        self.models = set(models)
        self.store = store
        self.shared = SharedState(store.db, replica or replica_id())
        self.config = ExperimentsFile()
        self.states: dict[str, ExperimentState] = {}  # the shared state as this replica last read it
        self.rng = random.Random(seed)
        self.last_error: str | None = None
        self._mtime: float | None = None
        self._ensured: ExperimentsFile | None = None
        if path is not None:
            self.reload(raise_errors=True)

    # --- configuration ---

    def reload(self, raise_errors: bool = False) -> bool:
        """Loads the file; a bad file is logged (or raised at start-up) and the running config stays."""
        try:
            config = load(self.path, self.models)
        except (ExperimentConfigError, OSError) as error:
            self.last_error = str(error)
            log.error("experiments file rejected, keeping the running configuration: %s", error)
            if raise_errors:
                raise
            return False
        self.config, self.last_error = config, None
        self._mtime = self.path.stat().st_mtime
        for name in config.by_name():
            self.states.setdefault(name, ExperimentState())
        self._export_weights()
        log.info("experiments loaded: %s", ", ".join(config.by_name()) or "none")
        return True

    async def watch(self, interval_s: float = 1.0) -> None:
        """Reloads the file whenever it changes on disk: experiments change without a restart."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                mtime = self.path.stat().st_mtime
            except OSError:
                continue
            if mtime != self._mtime:
                self._mtime = mtime
                self.reload()

    def get(self, name: str) -> Experiment | None:
        return self.config.by_name().get(name)

    def names(self) -> list[str]:
        return list(self.config.by_name())

    # --- the shared state ---

    async def refresh(self) -> None:
        """Reads the shared state again (first giving new experiments and ramps their rows)."""
        config = self.config
        if self._ensured is not config:
            await asyncio.to_thread(self.shared.ensure, config.experiments)
            self._ensured = config
        states = await asyncio.to_thread(self.shared.load, self.names())
        # the names configured now: the file may have been reloaded during the read
        self.states = {name: states.get(name) or self.states.get(name) or ExperimentState() for name in self.names()}
        self._export_weights()

    async def follow(self, interval_s: float = 1.0) -> None:
        """Keeps this replica's copy of the shared state at most ``interval_s`` (plus one read) old."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except Exception:  # the database may blip: keep serving the last state read, try again
                log.exception("reading the shared experiment state failed")

    # --- traffic ---

    def weights(self, experiment: Experiment) -> dict[str, float]:
        """Configured weights, with a ramp's current weight and stopped variants at zero."""
        state = self.states.get(experiment.name) or ExperimentState()
        weights = {v.name: v.weight for v in experiment.variants}
        ramp = experiment.ramp
        if ramp:
            weights[ramp.variant] = min(ramp.max_weight, state.ramp_weight or ramp.start_weight)
        for name, variant_state in state.variants.items():
            if variant_state.stopped_reason and name in weights:
                weights[name] = 0.0
        return weights

    def choose(self, experiment: Experiment, key: str | None) -> str:
        return assign(experiment, self.weights(experiment), key, self.rng)

    def record(self, record: Record, primary_top1: int | None = None) -> None:
        """Counts the answer in the metrics and queues it for the store (off the request path)."""
        if record.kind == "primary":
            self.metrics.requests.labels(record.experiment, record.variant, str(record.status)).inc()
            self.metrics.duration.labels(record.experiment, record.variant).observe(record.latency_ms / 1000)
        elif record.agrees is not None:
            self.metrics.shadow_agreement.labels(record.experiment, record.model, str(record.agrees).lower()).inc()
        self.store.add(record)

    # --- stops, restores, guardrails ---

    async def stop(self, experiment: str, variant: str, reason: str, guardrail: str = "manual") -> bool:
        """Stops the variant on every replica; False when it was stopped already."""
        stopped = await asyncio.to_thread(self.shared.stop, experiment, variant, reason, guardrail)
        if stopped:
            self.metrics.guardrail_trips.labels(experiment, variant, guardrail).inc()
            log.warning("experiment %s: variant %s stopped by %s: %s", experiment, variant, guardrail, reason)
        await self.refresh()
        return stopped

    async def restore(self, experiment: str, variant: str) -> bool:
        restored = await asyncio.to_thread(self.shared.restore, experiment, variant)
        if restored:
            log.warning("experiment %s: variant %s restored by an operator", experiment, variant)
        await self.refresh()
        return restored

    async def evaluate(self, lease_s: float = 30.0) -> list[guardrails.Breach]:
        """If this replica holds (or takes) the guardrail lease: checks every running variant against its
        control, stops the ones that breach a limit, and steps up the ramps whose variant holds."""
        if not await asyncio.to_thread(self.shared.lease, GUARDRAIL_LEASE, lease_s):
            return []
        breaches = []
        for experiment in self.config.experiments:
            totals = await self.store.aggregates(experiment.name)
            control = variant_figures(experiment, totals, experiment.control)
            state = self.states.get(experiment.name) or ExperimentState()
            for variant in experiment.variants:
                stopped = state.variants.get(variant.name)
                if variant.name == experiment.control or (stopped and stopped.stopped_reason):
                    continue
                breach = guardrails.check(experiment, variant_figures(experiment, totals, variant.name), control)
                if breach:
                    breaches.append(breach)
                    await self.stop(experiment.name, variant.name, breach.detail, breach.guardrail)
                elif experiment.ramp and experiment.ramp.variant == variant.name:
                    await self._step(experiment)
        await self.refresh()
        return breaches

    async def _step(self, experiment: Experiment) -> None:
        weight = await asyncio.to_thread(self.shared.step_ramp, experiment)
        if weight is not None:
            log.info("experiment %s: ramp of %s up to weight %g", experiment.name, experiment.ramp.variant, weight)

    async def guard(self, interval_s: float = 10.0) -> None:
        """Evaluates the guardrails every ``interval_s`` when this replica holds the lease (it lasts three
        intervals: a replica that dies or hangs is replaced by another within that time)."""
        try:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    await self.evaluate(lease_s=3 * interval_s)
                except Exception:  # a failing evaluation must not stop the loop (the database may blip)
                    log.exception("guardrail evaluation failed")
        finally:  # shutting down: another replica may take over at once
            await asyncio.to_thread(self.shared.release, GUARDRAIL_LEASE)

    async def report(self, name: str) -> dict:
        experiment = self.config.by_name()[name]
        totals = await self.store.aggregates(name)
        state = self.states.get(name) or ExperimentState()
        public_state = {
            "weights": self.weights(experiment),
            "stopped": {v: s.stopped_reason for v, s in state.variants.items() if s.stopped_reason},
            "events": list(state.events),
        }
        return build_report(experiment, totals, public_state)

    def _export_weights(self) -> None:
        for experiment in self.config.experiments:
            for variant, weight in self.weights(experiment).items():
                self.metrics.variant_weight.labels(experiment.name, variant).set(weight)
