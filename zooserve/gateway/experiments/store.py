"""Where experiment requests and feedback are recorded: SQLite by default, PostgreSQL given a URL.

Writes leave the request path: ``add`` only appends to a buffer that a background task flushes in
batches. ``close`` flushes everything, so nothing acknowledged is lost on a graceful shutdown. Feedback
is written at once (after a flush, so it can refer to a request answered a moment ago).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS experiment_records (
        request_id TEXT NOT NULL, kind TEXT NOT NULL, created REAL NOT NULL, experiment TEXT NOT NULL,
        variant TEXT NOT NULL, model TEXT NOT NULL, status INTEGER NOT NULL, latency_ms REAL NOT NULL,
        top1_index INTEGER, top1_label TEXT, top1_score REAL, agrees INTEGER,
        PRIMARY KEY (request_id, kind, model))""",
    """CREATE TABLE IF NOT EXISTS experiment_feedback (
        request_id TEXT PRIMARY KEY, label_index INTEGER NOT NULL, created REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS experiment_records_by_experiment ON experiment_records (experiment, kind)",
]


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


class UnknownRequestError(KeyError):
    pass


class DuplicateFeedbackError(ValueError):
    pass


class _Database:
    """The few statements the store needs, for sqlite3 and psycopg alike (they differ in placeholders)."""

    def __init__(self, url: str | None, sqlite_path: Path):
        self.lock = threading.Lock()
        if url:
            import psycopg

            self.connection = psycopg.connect(url, autocommit=True)
            self.mark, self.integrity_error = "%s", psycopg.errors.UniqueViolation
        else:
            sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(str(sqlite_path), check_same_thread=False, isolation_level=None)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.mark, self.integrity_error = "?", sqlite3.IntegrityError
        for statement in SCHEMA:
            self.execute(statement)

    def sql(self, statement: str) -> str:
        return statement.replace("?", self.mark)

    def execute(self, statement: str, params: tuple = ()) -> list[tuple]:
        with self.lock:
            cursor = self.connection.execute(self.sql(statement), params)
            return cursor.fetchall() if cursor.description else []

    def insert_many(self, statement: str, rows: list[tuple]) -> None:
        with self.lock:
            cursor = self.connection.cursor()
            cursor.executemany(self.sql(statement), rows)

    def close(self) -> None:
        with self.lock:
            self.connection.close()


RECORD_COLUMNS = [f.name for f in fields(Record)]
INSERT_RECORD = (
    f"INSERT INTO experiment_records ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join('?' * len(RECORD_COLUMNS))}) "
    "ON CONFLICT DO NOTHING"
)


class RecordStore:
    def __init__(self, sqlite_path: Path, database_url: str | None = None, flush_interval_s: float = 0.2,
                 batch_size: int = 200):
        self.db = _Database(database_url, sqlite_path)
        self.flush_interval_s = flush_interval_s
        self.batch_size = batch_size
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
                rows = [_row(r) for r in batch]
                try:
                    await asyncio.to_thread(self.db.insert_many, INSERT_RECORD, rows)
                except BaseException:
                    self.pending[:0] = batch  # kept for the next flush (inserts are idempotent)
                    raise
            return len(batch)

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
        known = await asyncio.to_thread(
            self.db.execute, "SELECT experiment FROM experiment_records WHERE request_id = ? AND kind = 'primary'",
            (request_id,),
        )
        if not known:
            raise UnknownRequestError(request_id)
        try:
            await asyncio.to_thread(
                self.db.execute, "INSERT INTO experiment_feedback (request_id, label_index, created) VALUES (?, ?, ?)",
                (request_id, label_index, time.time()),
            )
        except self.db.integrity_error:
            raise DuplicateFeedbackError(request_id) from None
        return known[0][0]

    async def request(self, request_id: str) -> tuple[str, str] | None:
        """The experiment and model of a recorded primary request, or None."""
        await self.flush()
        rows = await asyncio.to_thread(
            self.db.execute,
            "SELECT experiment, model FROM experiment_records WHERE request_id = ? AND kind = 'primary'",
            (request_id,),
        )
        return (rows[0][0], rows[0][1]) if rows else None

    async def records(self, experiment: str) -> list[dict[str, Any]]:
        """Every record of an experiment, with the feedback label where there is one."""
        await self.flush()
        columns = ", ".join(f"r.{c}" for c in RECORD_COLUMNS)
        rows = await asyncio.to_thread(
            self.db.execute,
            f"SELECT {columns}, f.label_index FROM experiment_records r LEFT JOIN experiment_feedback f "
            "ON f.request_id = r.request_id AND r.kind = 'primary' WHERE r.experiment = ? ORDER BY r.created",
            (experiment,),
        )
        return [dict(zip([*RECORD_COLUMNS, "label_index"], row)) for row in rows]


def _row(record: Record) -> tuple:
    values = list(astuple(record))
    agrees = RECORD_COLUMNS.index("agrees")
    values[agrees] = None if values[agrees] is None else int(values[agrees])
    return tuple(values)
