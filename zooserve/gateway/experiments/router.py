"""The running experiments: reloadable config, current weights (ramps, guardrail stops), assignment.

The gateway core asks ``get(name)`` whether a name is an experiment, ``choose`` for the variant that
serves a request, and hands every answer to ``record``. Guardrails are evaluated off the request path
from the recorded rows; a breach sets the variant's weight to zero until a person restores it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from prometheus_client import Counter, Gauge, Histogram

from . import guardrails
from .assign import assign
from .config import Experiment, ExperimentConfigError, ExperimentsFile, load
from .report import build_report, variant_figures
from .store import Record, RecordStore

log = logging.getLogger(__name__)

EXPERIMENT_REQUESTS = Counter(
    "zoo_experiment_requests_total", "Experiment requests by variant and status code", ["experiment", "variant", "code"]
)
EXPERIMENT_DURATION = Histogram(
    "zoo_experiment_request_duration_seconds", "Latency of experiment requests by variant", ["experiment", "variant"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SHADOW_AGREEMENT = Counter(
    "zoo_experiment_shadow_agreement_total", "Shadow answers by whether their top-1 agrees with the primary",
    ["experiment", "model", "agrees"],
)
GUARDRAIL_TRIPS = Counter(
    "zoo_experiment_guardrail_trips_total", "Variants stopped by a guardrail", ["experiment", "variant", "guardrail"]
)
VARIANT_WEIGHT = Gauge("zoo_experiment_variant_weight", "Current traffic weight of a variant", ["experiment", "variant"])


@dataclass
class VariantState:
    stopped_reason: str | None = None
    stopped_at: float | None = None


@dataclass
class ExperimentState:
    started: float = field(default_factory=time.time)
    variants: dict[str, VariantState] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)


class ExperimentRouter:
    def __init__(self, path: Path | None, models: Iterable[str], store: RecordStore, seed: int | None = None):
        self.path = path
        self.models = set(models)
        self.store = store
        self.config = ExperimentsFile()
        self.states: dict[str, ExperimentState] = {}
        self.rng = random.Random(seed)
        self.last_error: str | None = None
        self._mtime: float | None = None
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

    # --- traffic ---

    def weights(self, experiment: Experiment, now: float | None = None) -> dict[str, float]:
        """Configured weights, with a ramp's current step and stopped variants at zero."""
        state = self.states[experiment.name]
        now = time.time() if now is None else now
        weights = {v.name: v.weight for v in experiment.variants}
        ramp = experiment.ramp
        if ramp:
            steps = int((now - state.started) // ramp.every_s)
            weights[ramp.variant] = min(ramp.max_weight, ramp.start_weight + steps * ramp.step)
        for name, variant_state in state.variants.items():
            if variant_state.stopped_reason and name in weights:
                weights[name] = 0.0
        return weights

    def choose(self, experiment: Experiment, key: str | None) -> str:
        return assign(experiment, self.weights(experiment), key, self.rng)

    def record(self, record: Record, primary_top1: int | None = None) -> None:
        """Counts the answer in the metrics and queues it for the store (off the request path)."""
        if record.kind == "primary":
            EXPERIMENT_REQUESTS.labels(record.experiment, record.variant, str(record.status)).inc()
            EXPERIMENT_DURATION.labels(record.experiment, record.variant).observe(record.latency_ms / 1000)
        elif record.agrees is not None:
            SHADOW_AGREEMENT.labels(record.experiment, record.model, str(record.agrees).lower()).inc()
        self.store.add(record)

    # --- guardrails ---

    def stop(self, experiment: str, variant: str, reason: str, guardrail: str = "manual") -> None:
        state = self.states[experiment]
        state.variants[variant] = VariantState(stopped_reason=reason, stopped_at=time.time())
        state.events.append({"time": time.time(), "event": "stopped", "variant": variant, "guardrail": guardrail,
                             "reason": reason})
        GUARDRAIL_TRIPS.labels(experiment, variant, guardrail).inc()
        log.warning("experiment %s: variant %s stopped by guardrail %s: %s", experiment, variant, guardrail, reason)
        self._export_weights()

    def restore(self, experiment: str, variant: str) -> None:
        state = self.states[experiment]
        state.variants.pop(variant, None)
        state.events.append({"time": time.time(), "event": "restored", "variant": variant})
        log.warning("experiment %s: variant %s restored by an operator", experiment, variant)
        self._export_weights()

    async def evaluate(self) -> list[guardrails.Breach]:
        """Checks every running variant against its control; stops the ones that breach a limit."""
        breaches = []
        for experiment in self.config.experiments:
            totals = await self.store.aggregates(experiment.name)
            control = variant_figures(experiment, totals, experiment.control)
            for variant in experiment.variants:
                stopped = self.states[experiment.name].variants.get(variant.name)
                if variant.name == experiment.control or (stopped and stopped.stopped_reason):
                    continue
                breach = guardrails.check(experiment, variant_figures(experiment, totals, variant.name), control)
                if breach:
                    self.stop(experiment.name, variant.name, breach.detail, breach.guardrail)
                    breaches.append(breach)
        self._export_weights()
        return breaches

    async def guard(self, interval_s: float = 10.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.evaluate()
            except Exception:  # a failing evaluation must not stop the loop (the database may blip)
                log.exception("guardrail evaluation failed")

    async def report(self, name: str) -> dict:
        experiment = self.config.by_name()[name]
        totals = await self.store.aggregates(name)
        state = self.states[name]
        public_state = {
            "weights": self.weights(experiment),
            "stopped": {v: s.stopped_reason for v, s in state.variants.items() if s.stopped_reason},
            "events": list(state.events),
        }
        return build_report(experiment, totals, public_state)

    def _export_weights(self) -> None:
        for experiment in self.config.experiments:
            for variant, weight in self.weights(experiment).items():
                VARIANT_WEIGHT.labels(experiment.name, variant).set(weight)
