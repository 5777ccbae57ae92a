"""What every gateway replica must agree on, kept in the experiment database beside the records: when each
experiment started, its ramp's current weight and last step, the variants stopped and why, the events, and
which replica evaluates the guardrails (a lease: one row, renewed by its holder, taken over once expired).

Every write is one transaction, and the ones that race are made safe by the database: a stop is an insert
that only one replica wins, a ramp step a compare-and-set on the weight, the lease an upsert that only
takes an expired lease or renews one's own. Times come from the database's clock, so replicas whose
clocks differ still agree on a lease's expiry and a ramp's schedule. Each replica reads the whole state
again every few seconds (router.py), which bounds how long a change takes to reach the others.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field

from .config import Experiment
from .database import Database, Transaction

EVENTS_KEPT = 100  # per experiment, the newest; older ones stay in the table
GUARDRAIL_LEASE = "guardrails"


def replica_id() -> str:
    """This process among the replicas: host, pid and a random suffix (a pid may be reused in a new pod)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class VariantState:
    stopped_reason: str | None = None
    stopped_at: float | None = None


@dataclass
class ExperimentState:
    """One experiment's shared state as this replica last read it."""

    started: float | None = None
    ramp_weight: float | None = None
    variants: dict[str, VariantState] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)


class SharedState:
    def __init__(self, db: Database, replica: str):
        self.db, self.replica = db, replica

    def ensure(self, experiments: list[Experiment]) -> None:
        """A state row for every experiment that has none (its start is now), and a ramp weight for every
        ramp that has none yet."""
        def work(tx: Transaction) -> None:
            for experiment in experiments:
                start = experiment.ramp.start_weight if experiment.ramp else None
                tx.execute(f"INSERT INTO experiment_state (experiment, started, ramp_weight, ramp_stepped) "
                           f"VALUES (?, {self.db.now}, ?, {self.db.now}) ON CONFLICT DO NOTHING",
                           (experiment.name, start))
                if start is not None:
                    tx.execute(f"UPDATE experiment_state SET ramp_weight = ?, ramp_stepped = {self.db.now} "
                               "WHERE experiment = ? AND ramp_weight IS NULL", (start, experiment.name))
        self.db.run(work)

    def load(self, names: list[str]) -> dict[str, ExperimentState]:
        if not names:
            return {}
        marks = ", ".join("?" * len(names))

        def work(tx: Transaction) -> dict[str, ExperimentState]:
            states = {name: ExperimentState() for name in names}
            for name, started, ramp_weight in tx.execute(
                    f"SELECT experiment, started, ramp_weight FROM experiment_state WHERE experiment IN ({marks})",
                    names):
                states[name].started, states[name].ramp_weight = started, ramp_weight
            for name, variant, reason, stopped in tx.execute(
                    f"SELECT experiment, variant, reason, stopped FROM experiment_stops WHERE experiment IN ({marks})",
                    names):
                states[name].variants[variant] = VariantState(reason, stopped)
            for name, *event in tx.execute(
                    "SELECT experiment, time, event, variant, guardrail, reason, replica FROM experiment_events "
                    f"WHERE experiment IN ({marks}) ORDER BY time", names):
                states[name].events.append(_event(*event))
            for state in states.values():
                del state.events[:-EVENTS_KEPT]
            return states
        return self.db.run(work)

    def stop(self, experiment: str, variant: str, reason: str, guardrail: str) -> bool:
        """Stops the variant unless it is stopped already (then False: another replica was first)."""
        def work(tx: Transaction) -> bool:
            won = tx.execute(f"INSERT INTO experiment_stops (experiment, variant, reason, stopped) VALUES "
                             f"(?, ?, ?, {self.db.now}) ON CONFLICT DO NOTHING RETURNING variant",
                             (experiment, variant, reason))
            if won:
                self._event(tx, experiment, "stopped", variant, guardrail, reason)
            return bool(won)
        return self.db.run(work)

    def restore(self, experiment: str, variant: str) -> bool:
        """Gives a stopped variant its traffic back; False when it was not stopped."""
        def work(tx: Transaction) -> bool:
            removed = tx.execute("DELETE FROM experiment_stops WHERE experiment = ? AND variant = ? RETURNING variant",
                                 (experiment, variant))
            if removed:
                self._event(tx, experiment, "restored", variant)
            return bool(removed)
        return self.db.run(work)

    def step_ramp(self, experiment: Experiment) -> float | None:
        """Raises the ramp by one step if ``every_s`` has passed since the last; the new weight, or None."""
        ramp = experiment.ramp

        def work(tx: Transaction) -> float | None:
            rows = tx.execute(f"SELECT ramp_weight FROM experiment_state WHERE experiment = ? AND ramp_weight < ? "
                              f"AND ramp_stepped <= {self.db.now} - ?",
                              (experiment.name, ramp.max_weight, ramp.every_s))
            if not rows:
                return None
            weight = min(ramp.max_weight, rows[0][0] + ramp.step)
            tx.execute(f"UPDATE experiment_state SET ramp_weight = ?, ramp_stepped = {self.db.now} "
                       "WHERE experiment = ? AND ramp_weight = ?", (weight, experiment.name, rows[0][0]))
            if tx.rowcount != 1:
                return None
            self._event(tx, experiment.name, "ramped", ramp.variant, reason=f"weight {weight:g}")
            return weight
        return self.db.run(work)

    def lease(self, name: str, seconds: float) -> bool:
        """Takes or renews the lease ``name`` for ``seconds``; False while another replica holds it."""
        now = self.db.now
        held = self.db.execute(
            f"INSERT INTO experiment_leases (name, holder, expires) VALUES (?, ?, {now} + ?) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires "
            f"WHERE experiment_leases.holder = excluded.holder OR experiment_leases.expires < {now} RETURNING holder",
            (name, self.replica, seconds))
        return bool(held)

    def release(self, name: str) -> None:
        self.db.execute("DELETE FROM experiment_leases WHERE name = ? AND holder = ?", (name, self.replica))

    def _event(self, tx: Transaction, experiment: str, event: str, variant: str, guardrail: str | None = None,
               reason: str | None = None) -> None:
        tx.execute(f"INSERT INTO experiment_events (experiment, time, event, variant, guardrail, reason, replica) "
                   f"VALUES (?, {self.db.now}, ?, ?, ?, ?, ?)", (experiment, event, variant, guardrail, reason,
                                                                  self.replica))


def _event(time: float, event: str, variant: str, guardrail: str | None, reason: str | None, replica: str) -> dict:
    found = {"time": time, "event": event, "variant": variant, "replica": replica}
    return found | {k: v for k, v in (("guardrail", guardrail), ("reason", reason)) if v is not None}
