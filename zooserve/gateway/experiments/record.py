"""One answered request of an experiment, as the record store keeps it and the running totals count it (a
module of its own: both store.py and totals.py need it, and the store imports the totals)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    """One answered request of an experiment: the primary (kind 'primary') or a shadow's copy."""

    request_id: str
    kind: str  # "primary" or "shadow"
    created: float
    experiment: str
    variant: str
    model: str
    status: int
    latency_ms: float
    top1_index: int | None = None
    top1_label: str | None = None
    top1_score: float | None = None
    agrees: bool | None = None  # shadows: same top-1 as the primary

    @property
    def key(self) -> tuple[str, str, str]:
        return self.request_id, self.kind, self.model
