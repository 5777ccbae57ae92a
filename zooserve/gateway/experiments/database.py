"""The experiment database: SQLite for one gateway process, PostgreSQL for several (``ZOO_DATABASE_URL``).

One connection, used from worker threads one call at a time. The statements are written once, with ``?``
placeholders, in the SQL both databases accept (``ON CONFLICT ... DO UPDATE``, ``RETURNING``); only the
placeholder and the database's clock differ. Tables:

- experiment_records: one row per answered request (primary or shadow); experiment_feedback: true labels;
- experiment_totals: running totals per (experiment, variant, kind, model, time bucket), kept as records
  and feedback arrive; experiment_latency: per variant, how many successful requests fell in each latency
  bin (latency.py). Reports and guardrails read these two, never the records;
- experiment_state, experiment_stops, experiment_events, experiment_leases: what every gateway replica
  must agree on (state.py).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SCHEMA_LOCK = 0x7A6F6F  # a PostgreSQL advisory lock key of our own
# (PostgreSQL's REAL is 4 bytes: a time stamp in it is rounded to the nearest 128 seconds)

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS experiment_records (
        request_id TEXT NOT NULL, kind TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, experiment TEXT NOT NULL,
        variant TEXT NOT NULL, model TEXT NOT NULL, status INTEGER NOT NULL, latency_ms DOUBLE PRECISION NOT NULL,
        top1_index INTEGER, top1_label TEXT, top1_score DOUBLE PRECISION, agrees INTEGER,
        PRIMARY KEY (request_id, kind, model))""",
    """CREATE TABLE IF NOT EXISTS experiment_feedback (
        request_id TEXT PRIMARY KEY, label_index INTEGER NOT NULL, created DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS experiment_totals (
        experiment TEXT NOT NULL, variant TEXT NOT NULL, kind TEXT NOT NULL, model TEXT NOT NULL,
        bucket BIGINT NOT NULL, requests INTEGER NOT NULL, errors INTEGER NOT NULL, labelled INTEGER NOT NULL,
        correct INTEGER NOT NULL, compared INTEGER NOT NULL, agreed INTEGER NOT NULL,
        PRIMARY KEY (experiment, variant, kind, model, bucket))""",
    """CREATE TABLE IF NOT EXISTS experiment_latency (
        experiment TEXT NOT NULL, variant TEXT NOT NULL, bin INTEGER NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (experiment, variant, bin))""",
    """CREATE TABLE IF NOT EXISTS experiment_state (
        experiment TEXT PRIMARY KEY, started DOUBLE PRECISION NOT NULL, ramp_weight DOUBLE PRECISION,
        ramp_stepped DOUBLE PRECISION)""",
    """CREATE TABLE IF NOT EXISTS experiment_stops (
        experiment TEXT NOT NULL, variant TEXT NOT NULL, reason TEXT NOT NULL, stopped DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (experiment, variant))""",
    """CREATE TABLE IF NOT EXISTS experiment_events (
        experiment TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, event TEXT NOT NULL, variant TEXT NOT NULL,
        guardrail TEXT, reason TEXT, replica TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS experiment_events_by_experiment ON experiment_events (experiment, time)",
    """CREATE TABLE IF NOT EXISTS experiment_leases (
        name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL)""",
]


def _widen_record_times(tx: "Transaction") -> None:
    """Record tables created before the time stamps were 8 bytes get them now (a table rewrite, once)."""
    found = tx.execute("SELECT data_type FROM information_schema.columns WHERE table_name = 'experiment_records' "
                       "AND column_name = 'created' AND table_schema = current_schema()")
    if found and found[0][0] == "real":
        tx.execute("ALTER TABLE experiment_records ALTER COLUMN created TYPE DOUBLE PRECISION")


class Transaction:
    """Statements inside one transaction (placeholders ``?``)."""

    def __init__(self, cursor: Any, mark: str, postgres: bool):
        self.cursor, self.mark, self.postgres = cursor, mark, postgres

    def execute(self, statement: str, params: Sequence = ()) -> list[tuple]:
        self.cursor.execute(statement.replace("?", self.mark), params)
        return self.cursor.fetchall() if self.cursor.description else []

    def many(self, statement: str, rows: list[tuple]) -> None:
        if rows:
            self.cursor.executemany(statement.replace("?", self.mark), rows)

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount


class Database:
    def __init__(self, url: str | None, sqlite_path: Path):
        self.lock = threading.Lock()
        if url:
            import psycopg

            self.url = url
            self.connection = psycopg.connect(url, autocommit=True)
            self.mark, self.integrity_error = "%s", psycopg.errors.UniqueViolation
            self.now = "CAST(extract(epoch FROM clock_timestamp()) AS DOUBLE PRECISION)"
        else:
            sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(str(sqlite_path), check_same_thread=False, isolation_level=None)
            self.connection.execute("PRAGMA journal_mode=WAL")
            # with WAL, NORMAL cannot corrupt the file; only a power cut may drop the last commits (a process
            # that exits, even by crashing, loses nothing committed)
            self.connection.execute("PRAGMA synchronous=NORMAL")
            self.mark, self.integrity_error = "?", sqlite3.IntegrityError
            self.now = "((julianday('now') - 2440587.5) * 86400.0)"
        self.postgres = bool(url)
        with self.transaction() as tx:
            if self.postgres:  # replicas starting together: CREATE TABLE IF NOT EXISTS is not safe concurrently
                tx.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
            for statement in SCHEMA:
                tx.execute(statement)
            if self.postgres:
                _widen_record_times(tx)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """All or nothing: committed on leaving, rolled back on an exception."""
        with self.lock:
            if self.postgres:
                if self.connection.broken:  # the server restarted, or the network dropped: the call that saw
                    self._reconnect()  # it failed (its caller retries); this one gets a new connection
                with self.connection.transaction(), self.connection.cursor() as cursor:
                    yield Transaction(cursor, self.mark, True)
                return
            cursor = self.connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(cursor, self.mark, False)
            except BaseException:
                if self.connection.in_transaction:  # (SQLite ends some failed transactions itself)
                    cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    def _reconnect(self) -> None:
        import psycopg

        self.connection.close()
        self.connection = psycopg.connect(self.url, autocommit=True)

    def run(self, work: Callable[[Transaction], T]) -> T:
        with self.transaction() as tx:
            return work(tx)

    def execute(self, statement: str, params: Sequence = ()) -> list[tuple]:
        with self.transaction() as tx:
            return tx.execute(statement, params)

    def close(self) -> None:
        with self.lock:
            self.connection.close()
