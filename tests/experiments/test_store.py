"""The record store on SQLite and on a real PostgreSQL: batching, feedback, nothing lost on close."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.postgres import running_postgres
from zooserve.gateway.experiments.store import DuplicateFeedbackError, Record, RecordStore, UnknownRequestError


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
