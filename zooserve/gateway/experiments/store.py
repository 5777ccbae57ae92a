"""Where experiment requests and feedback are recorded: SQLite by default, PostgreSQL given a URL.

Writes leave the request path: ``add`` only appends to a buffer that a background task flushes in
batches. A batch is one transaction: its records, and what they add to the running totals that reports
and guardrails read (totals.py); only the records the database did not hold already are counted, so a
batch written again after an error is not counted twice. ``close`` flushes everything, so nothing
acknowledged is lost on a graceful shutdown. Feedback is written at once (after a flush, so it can refer
to a request answered a moment ago), with its label counted in the totals in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import totals
from .database import SCHEMA_LOCK, Database, Transaction
from .record import Record

log = logging.getLogger(__name__)

INSERT_CHUNK = 500  # SQLite: records per INSERT statement (12 parameters each: under its limit)


class UnknownRequestError(KeyError):
    pass


class DuplicateFeedbackError(ValueError):
    pass


RECORD_COLUMNS = [f.name for f in fields(Record)]


RETURNING = "ON CONFLICT DO NOTHING RETURNING request_id, kind, model"
# PostgreSQL: the batch as one array per column (one short statement, parsed once; no parameter limit)
POSTGRES_TYPES = ("text", "text", "float8", "text", "text", "text", "int4", "float8", "int4", "text", "float8", "int4")
INSERT_UNNEST = (f"INSERT INTO experiment_records ({', '.join(RECORD_COLUMNS)}) SELECT * FROM unnest("
                 f"{', '.join(f'?::{t}[]' for t in POSTGRES_TYPES)}) {RETURNING}")


@lru_cache(maxsize=8)
def _insert_values(rows: int) -> str:
    """SQLite: one statement for ``rows`` records."""
    values = ", ".join([f"({', '.join('?' * len(RECORD_COLUMNS))})"] * rows)
    return f"INSERT INTO experiment_records ({', '.join(RECORD_COLUMNS)}) VALUES {values} {RETURNING}"


def insert_new(tx: Transaction, records: list[Record]) -> set[tuple]:
    """Inserts the records; the keys of those the database did not hold already."""
    rows = [_row(r) for r in records]
    if tx.postgres:
        return set(tx.execute(INSERT_UNNEST, [list(column) for column in zip(*rows)]))
    inserted: set[tuple] = set()
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start:start + INSERT_CHUNK]
        inserted.update(tx.execute(_insert_values(len(chunk)), [value for row in chunk for value in row]))
    return inserted


PRIMARY = "SELECT experiment, variant, model, status, top1_index FROM experiment_records " \
          "WHERE request_id = ? AND kind = 'primary'"


BACKFILL_CHUNK = 10_000


def backfill(tx: Transaction, bucket_s: int) -> int:
    """A database written before the running totals existed gets them from its records and labels, once (under
    PostgreSQL's schema lock: replicas starting together wait for the first). The records counted."""
    if tx.postgres:
        tx.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
    if tx.execute("SELECT 1 FROM experiment_totals LIMIT 1") or not tx.execute(
            "SELECT 1 FROM experiment_records LIMIT 1"):
        return 0
    after, counted = ("", "", ""), 0
    while rows := tx.execute(f"SELECT {', '.join(RECORD_COLUMNS)} FROM experiment_records WHERE (request_id, kind, "
                             "model) > (?, ?, ?) ORDER BY request_id, kind, model LIMIT ?", (*after, BACKFILL_CHUNK)):
        records = [Record(*row) for row in rows]
        totals.add(tx, *totals.additions(records, bucket_s))
        after, counted = records[-1].key, counted + len(records)
    labels = tx.execute("SELECT r.experiment, r.variant, r.model, r.top1_index, f.label_index, f.created FROM "
                        "experiment_feedback f JOIN experiment_records r ON r.request_id = f.request_id AND "
                        "r.kind = 'primary' WHERE r.status = 200")
    totals.add(tx, totals.label_additions(labels, bucket_s), [])
    log.warning("experiment totals computed from %d records written before they existed", counted)
    return counted


class RecordStore:
    def __init__(self, sqlite_path: Path, database_url: str | None = None, flush_interval_s: float = 0.2,
                 bucket_s: int = 60):
        self.db = Database(database_url, sqlite_path)
        self.flush_interval_s = flush_interval_s
        self.bucket_s = bucket_s  # the time resolution of the totals (and of the report's chart)
        self.db.run(lambda tx: backfill(tx, bucket_s))
        self.pending: list[Record] = []
        self._flush_lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flush_periodically())

    def add(self, record: Record) -> None:
        """Off the request path: the record is written by the next flush."""
        self.pending.append(record)

    async def flush(self) -> int:
        async with self._flush_lock:
            batch, self.pending = self.pending, []
            if batch:
                try:
                    await asyncio.to_thread(self.db.run, lambda tx: self.write(tx, batch))
                except BaseException:
                    self.pending[:0] = batch  # kept for the next flush (inserts are idempotent)
                    raise
            return len(batch)

    def write(self, tx: Transaction, batch: list[Record]) -> None:
        """The records new to the database, and what they add to the totals (one transaction)."""
        unique: dict[tuple, Record] = {}
        for record in batch:
            unique.setdefault(record.key, record)
        records = list(unique.values())
        inserted = insert_new(tx, records) if records else set()
        totals.add(tx, *totals.additions((r for r in records if r.key in inserted), self.bucket_s))

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            try:
                await self.flush()
            except Exception:  # the database may blip: the records stay pending, the loop goes on
                log.exception("writing experiment records failed; retrying")

    async def close(self) -> None:
        """Flushes whatever is pending: every record acknowledged to a caller reaches the database."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
        self.db.close()

    async def add_feedback(self, request_id: str, label_index: int) -> str:
        """Stores the true label of a primary request; UnknownRequest/DuplicateFeedback otherwise."""
        await self.flush()
        try:
            return await asyncio.to_thread(
                self.db.run, lambda tx: self.write_feedback(tx, request_id, label_index, time.time()))
        except self.db.integrity_error:
            raise DuplicateFeedbackError(request_id) from None

    def write_feedback(self, tx: Transaction, request_id: str, label_index: int, now: float) -> str:
        """The label, and what it adds to the totals (in ``tx``); the experiment of the request."""
        known = tx.execute(PRIMARY, (request_id,))
        if not known:
            raise UnknownRequestError(request_id)
        experiment, variant, model, status, top1_index = known[0]
        tx.execute("INSERT INTO experiment_feedback (request_id, label_index, created) VALUES (?, ?, ?)",
                   (request_id, label_index, now))
        if status == 200:  # a failed request has no answer to be right or wrong (as in backfill)
            label = (experiment, variant, model, top1_index, label_index, now)
            totals.add(tx, totals.label_additions([label], self.bucket_s), [])
        return experiment

    async def request(self, request_id: str) -> tuple[str, str] | None:
        """The experiment and model of a recorded primary request, or None."""
        await self.flush()
        rows = await asyncio.to_thread(self.db.execute, PRIMARY, (request_id,))
        return (rows[0][0], rows[0][2]) if rows else None

    async def aggregates(self, experiment: str) -> totals.ExperimentTotals:
        """The experiment's running totals (what reports and guardrails read)."""
        await self.flush()
        return await asyncio.to_thread(self.db.run, lambda tx: totals.read(tx, experiment))

    async def records(self, experiment: str) -> list[dict[str, Any]]:
        """Every record of an experiment, with the feedback label where there is one (for tests and audits:
        reports never read them)."""
        await self.flush()
        columns = ", ".join(f"r.{c}" for c in RECORD_COLUMNS)
        rows = await asyncio.to_thread(
            self.db.execute,
            f"SELECT {columns}, f.label_index FROM experiment_records r LEFT JOIN experiment_feedback f "
            "ON f.request_id = r.request_id AND r.kind = 'primary' WHERE r.experiment = ? ORDER BY r.created",
            (experiment,),
        )
        return [dict(zip([*RECORD_COLUMNS, "label_index"], row)) for row in rows]


def _row(r: Record) -> tuple:
    return (r.request_id, r.kind, r.created, r.experiment, r.variant, r.model, r.status, r.latency_ms, r.top1_index,
            r.top1_label, r.top1_score, None if r.agrees is None else int(r.agrees))
