"""The record store on SQLite and on a real PostgreSQL: batching, feedback, nothing lost on close."""

from __future__ import annotations

import asyncio
import time

import pytest

from loadtests.postgres import running_postgres
from zooserve.gateway.experiments.store import (
    DuplicateFeedbackError,
    Record,
    RecordStore,
    UnknownRequestError,
    insert_new,
)


@pytest.fixture(scope="module")
def postgres_url():
    with running_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_factory(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return lambda: RecordStore(tmp_path / "records.sqlite3", database_url=url, flush_interval_s=0.05)


def record(request_id: str, variant: str = "a", kind: str = "primary", model: str = "resnet50", **extra) -> Record:
    return Record(request_id=request_id, kind=kind, created=time.time(), experiment="exp", variant=variant,
                  model=model, status=200, latency_ms=12.5, top1_index=281, top1_label="tabby", top1_score=0.4,
                  **extra)


def test_records_survive_close_and_reopen(store_factory):
    async def scenario():
        store = store_factory()
        await store.start()
        for i in range(500):  # more than one batch, never flushed by hand
            store.add(record(f"r{i}", variant="ab"[i % 2]))
        store.add(record("r0", kind="shadow", model="squeezenet1_0", agrees=True))
        await store.close()  # a graceful shutdown
        reopened = store_factory()
        rows = await reopened.records("exp")
        await reopened.close()
        return rows

    rows = asyncio.run(scenario())
    primaries = [r for r in rows if r["kind"] == "primary"]
    primaries = [r for r in primaries if r["request_id"].startswith("r")]
    assert len(primaries) == 500 and {r["variant"] for r in primaries} == {"a", "b"}
    shadow = next(r for r in rows if r["kind"] == "shadow")
    assert shadow["model"] == "squeezenet1_0" and shadow["agrees"] == 1


def test_background_flush_writes_without_being_asked(store_factory):
    async def scenario():
        store = store_factory()
        await store.start()
        store.add(record("early"))
        await asyncio.sleep(0.3)
        pending = len(store.pending)
        await store.close()
        return pending

    assert asyncio.run(scenario()) == 0


def test_feedback_unknown_and_duplicate(store_factory):
    async def scenario():
        store = store_factory()
        await store.start()
        store.add(record("known"))  # not yet flushed: feedback must still find it
        experiment = await store.add_feedback("known", 281)
        with pytest.raises(UnknownRequestError):
            await store.add_feedback("never-seen", 1)
        with pytest.raises(DuplicateFeedbackError):
            await store.add_feedback("known", 5)
        rows = await store.records("exp")
        await store.close()
        return experiment, rows

    experiment, rows = asyncio.run(scenario())
    known = [r for r in rows if r["request_id"] == "known"]
    assert experiment == "exp" and [r["label_index"] for r in known] == [281]


def test_a_batch_written_again_is_counted_once(store_factory):
    """A flush whose commit was not acknowledged is written again: the records are there once, and so are
    their counts in the totals."""
    store = store_factory()
    before = asyncio.run(store.aggregates("exp"))  # (the PostgreSQL database is the module's: other tests wrote)
    batch = [record(f"t{i}", variant="ab"[i % 2]) for i in range(300)]
    for _ in range(2):
        store.db.run(lambda tx: store.write(tx, batch + batch[:10]))
    after = asyncio.run(store.aggregates("exp"))
    asyncio.run(store.close())
    for variant in "ab":
        assert after.total(variant, "requests") - before.total(variant, "requests") == 150
        assert after.histogram(variant).n - before.histogram(variant).n == 150


def test_postgres_record_times_are_widened_to_8_bytes(postgres_url, tmp_path):
    """Tables created when the time stamps were REAL (4 bytes in PostgreSQL: 128 s steps) are altered."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS experiment_records")
        connection.execute("CREATE TABLE experiment_records (request_id TEXT NOT NULL, kind TEXT NOT NULL, "
                           "created REAL NOT NULL, experiment TEXT NOT NULL, variant TEXT NOT NULL, "
                           "model TEXT NOT NULL, status INTEGER NOT NULL, latency_ms REAL NOT NULL, "
                           "top1_index INTEGER, top1_label TEXT, top1_score REAL, agrees INTEGER, PRIMARY KEY (request_id, kind, model))")
    store = RecordStore(tmp_path / "unused.sqlite3", database_url=postgres_url)
    store.add(record("precise"))
    rows = asyncio.run(store.records("exp"))
    asyncio.run(store.close())
    created = next(r["created"] for r in rows if r["request_id"] == "precise")
    assert abs(created - time.time()) < 60


def test_records_written_before_the_totals_existed_are_counted_once(store_factory):
    """An older database (records and labels, no totals) gets its totals when a store opens it; once."""
    store = store_factory()
    if store.db.postgres:  # the module's server: start from empty tables
        store.db.execute("DELETE FROM experiment_totals")
        store.db.execute("DELETE FROM experiment_latency")
        store.db.execute("DELETE FROM experiment_feedback")
        store.db.execute("DELETE FROM experiment_records")
    old = [record(f"old{i}", variant="ab"[i % 3 == 0]) for i in range(25_000)]  # more than one chunk
    old += [record("old1", kind="shadow", model="squeezenet1_0", agrees=False)]
    store.db.run(lambda tx: insert_new(tx, old))
    labels = [(f"old{i}", 281 if i % 4 else 5, time.time()) for i in range(0, 1000)]
    store.db.run(lambda tx: tx.many("INSERT INTO experiment_feedback (request_id, label_index, created) "
                                    "VALUES (?, ?, ?)", labels))
    asyncio.run(store.close())
    reopened = store_factory()
    totals = asyncio.run(reopened.aggregates("exp"))
    asyncio.run(reopened.close())
    again = asyncio.run(store_factory().aggregates("exp"))
    for figures in (totals, again):
        assert figures.total("a", "requests") + figures.total("b", "requests") == 25_000
        assert figures.total("b", "requests") == sum(1 for i in range(25_000) if i % 3 == 0)
        assert figures.total("a", "labelled") + figures.total("b", "labelled") == 1000
        assert figures.total("a", "correct") + figures.total("b", "correct") == 750
        assert figures.histogram("a").n == figures.total("a", "requests")
        assert figures.agreement[("a", "squeezenet1_0")] == (1, 0)


def test_a_dropped_postgres_connection_is_replaced(postgres_url, tmp_path):
    """The server ends the store's connection (as a restart would): the call that meets it fails, and is kept
    for the next flush; the next call connects again and writes it."""
    import psycopg

    store = RecordStore(tmp_path / "unused.sqlite3", database_url=postgres_url)
    pid = store.db.connection.info.backend_pid
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    store.add(record("after-the-drop"))
    with pytest.raises(psycopg.OperationalError):
        asyncio.run(store.flush())
    assert len(store.pending) == 1
    rows = asyncio.run(store.records("exp"))
    new_pid = store.db.connection.info.backend_pid
    asyncio.run(store.close())
    assert "after-the-drop" in {r["request_id"] for r in rows} and new_pid != pid
