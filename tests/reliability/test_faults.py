"""Faults under load, each against real processes: a TorchServe worker killed with SIGKILL, TorchServe stopped
and started again, and a request slower than its deadline on a heavy real network. Each test prints what it
measured (failed requests, recovery time); docs/reliability.md quotes those lines.

The gateway stopped with SIGTERM under load is tests/gateway/test_experiments.py
(test_sigterm_under_load_loses_no_acknowledged_request), beside the experiments it flushes.
"""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest

from tests.conftest import photo, torchserve_ports
from tests.gateway.test_limits import _wait_until_silent
from tests.reliability.conftest import SLOW_MODEL
from tests.reliability.harness import (
    Answer,
    Load,
    Moment,
    gateway_process,
    grpc_client,
    kill,
    rest_client,
    scale,
    wait_until,
    worker_pids,
)
from zooserve.torchserve import TorchServe

MODEL = "resnet18"


def _first_success_after(answers: list[Answer], moment: float) -> float:
    """Seconds from ``moment`` to the first 200 answered to a request sent after it."""
    done = [a.done for a in answers if a.status == 200 and a.sent > moment]
    assert done, "no request succeeded after the fault"
    return min(done) - moment


@pytest.mark.parametrize("model", ["resnet18", "squeezenet1_0"])  # two workers (one survives), one (none does)
def test_worker_killed_under_load_is_retried_and_replaced(reliability_torchserve, model):
    torchserve, body = reliability_torchserve, photo("chelsea.jpg")
    with gateway_process(torchserve) as gateway:
        clients = [rest_client(gateway.url, model, body) for _ in range(4)]
        clients += [grpc_client(gateway.grpc_target, model, body) for _ in range(2)]
        assert clients[0]().status == 200  # loaded, its workers up
        old = worker_pids(torchserve, model)
        with Load(clients, pause_s=0.05) as load:
            time.sleep(2)  # six clients for workers taking batches of four: never idle
            killed_at = time.monotonic()
            kill(old[0])
            replaced_s = wait_until(lambda: _replaced(torchserve, model, old), 120,
                                    "TorchServe never started a new worker", interval=0.2)
            time.sleep(2)  # the load goes on against the new worker
        retries = gateway.metric("zoo_backend_retries_total", model=model, reason="worker_died")

    answers = load.answers
    failed = Counter(a.status for a in answers if a.status != 200)
    recovery_s = _first_success_after(answers, killed_at)
    slowest = max(a.seconds for a in answers if a.sent < killed_at < a.done)
    print(f"\nworker SIGKILL ({model}, {len(old)} worker(s)): {len(answers)} requests from 6 clients, "
          f"{sum(failed.values())} failed {dict(failed)}, {retries:.0f} retried by the gateway; new worker READY "
          f"{replaced_s:.1f} s after the kill; first success of a request sent after the kill {recovery_s:.2f} s "
          f"after it; the slowest request in flight at the kill took {slowest:.1f} s")
    assert not failed, f"requests failed: {dict(failed)}"
    assert retries >= 1  # the kill hit a batch in flight, and the gateway sent it again
    assert recovery_s < 60


def _replaced(torchserve: TorchServe, model: str, old: list[int]) -> bool:
    """All the model's workers READY again, one of them new."""
    pids = worker_pids(torchserve, model)
    return len(pids) == len(old) and set(pids) != set(old)


@pytest.mark.parametrize("protocol", ["grpc", "http"])  # TorchServe's two APIs word it alike
def test_a_model_without_a_worker_is_tried_twice_then_503(reliability_torchserve, protocol):
    """TorchServe's other retryable answer: the model is registered but has no worker (scaled to none here)."""
    torchserve, model = reliability_torchserve, "squeezenet1_0"
    with gateway_process(torchserve, backend_protocol=protocol) as gateway:
        send = rest_client(gateway.url, model, photo("chelsea.jpg"))
        assert send().status == 200
        scale(torchserve, model, 0)
        try:
            answer = send()
            retries = gateway.metric("zoo_backend_retries_total", model=model, reason="no_worker")
        finally:
            scale(torchserve, model, 1)
        assert send().status == 200  # the worker back: served again, by the same gateway
    assert answer.status == 503 and retries == 1


def _backend_up(gateway) -> bool:
    """Whether /readyz (200 throughout: the gateway's readiness is its own) reports TorchServe answering."""
    ready = httpx.get(f"{gateway.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    return ready.json()["backends"]["local"]


def test_torchserve_restarted_under_load_recovers_without_restarting_the_gateway(reliability_store, tmp_path):
    torchserve = TorchServe(tmp_path / "torchserve", reliability_store, torchserve_ports())
    with torchserve, gateway_process(torchserve) as gateway:
        clients = [rest_client(gateway.url, MODEL, photo("chelsea.jpg")) for _ in range(3)]
        assert clients[0]().status == 200
        with Load(clients, pause_s=0.1) as load:
            time.sleep(1)
            stopping = time.monotonic()
            silent, not_ready = Moment(lambda: not torchserve.ping()), Moment(lambda: not _backend_up(gateway))
            torchserve.stop()  # the launcher, the Java frontend and the workers, as an operator's stop does
            _wait_until_silent(torchserve)
            silent_at, not_ready_at = silent.wait(30, "TorchServe kept answering"), not_ready.wait(30, "/readyz")
            time.sleep(3)  # the outage, under load
            restarted_at = time.monotonic()
            torchserve.start()  # same ports and directory, new tokens, no model registered
            up_s = time.monotonic() - restarted_at
            wait_until(lambda: _backend_up(gateway), 60, "/readyz never reported TorchServe up again")
            wait_until(lambda: any(a.status == 200 and a.sent > restarted_at for a in load.answers), 120,
                       "requests never succeeded again")
            time.sleep(1)
        reloads = gateway.metric("zoo_backend_retries_total", model=MODEL, reason="model_lost")
        loads = gateway.metric("zoo_model_loads_total", model=MODEL, outcome="loaded")
        assert gateway.process.popen.poll() is None  # the same gateway process throughout

    answers = load.answers
    outage = [a for a in answers if a.sent > silent_at and a.done < restarted_at]
    statuses = Counter(a.status for a in answers)
    recovery_s = _first_success_after(answers, restarted_at)
    print(f"\nTorchServe restart: {len(answers)} requests, statuses {dict(statuses)}; TorchServe silent "
          f"{silent_at - stopping:.1f} s after its stop began, reported down by /readyz {not_ready_at - stopping:.1f} s "
          f"after it; "
          f"{len(outage)} requests while it was down, slowest answer {max(a.seconds for a in outage) * 1000:.0f} ms; "
          f"TorchServe up again in {up_s:.1f} s, first success {recovery_s:.1f} s after the restart began "
          f"({reloads:.0f} requests found the model gone, {loads:.0f} loads in all)")
    assert not_ready_at - silent_at < 10  # /readyz's report follows TorchServe within seconds
    assert outage and {a.status for a in outage} == {503}  # refused at once, not hung
    assert max(a.seconds for a in outage) < 5
    assert set(statuses) <= {200, 503}
    assert reloads >= 1 and loads == 2  # registered again on demand by the same gateway
    assert recovery_s < 60


def test_a_request_over_its_deadline_is_504_and_the_worker_is_not_wedged(reliability_torchserve):
    """A real heavy network (AmoebaNet-A, 468M parameters: seconds per image here) under a deadline a
    fraction of its service time: 504 at the deadline, and the same worker answers the next request as
    soon as it has finished the abandoned one."""
    torchserve, body = reliability_torchserve, photo("chelsea.jpg")
    # room for the load (tens of seconds), waited for within the request rather than answered 503 model_loading
    with gateway_process(torchserve, request_timeout_s=900, load_wait_s=900) as gateway:
        first = httpx.post(f"{gateway.url}/predict/{SLOW_MODEL}", content=body, timeout=900)
        assert first.status_code == 200, first.text
        # its time inside TorchServe (a first inference, if anything slower than the next ones)
        service_s = first.json()["timings"]["backend_ms"] / 1000
        assert service_s > 1.0, f"{SLOW_MODEL} answers in {service_s:.2f} s: not slow enough for this test"
        (pid,) = worker_pids(torchserve, SLOW_MODEL)
        deadline_s = round(service_s / 4, 3)
        with gateway_process(torchserve, request_timeout_s=deadline_s) as hurried:
            late = rest_client(hurried.url, SLOW_MODEL, body)()
            freed = hurried.metric("zoo_requests_in_flight", model=SLOW_MODEL)
        following = rest_client(gateway.url, SLOW_MODEL, body, timeout=900)()
        assert worker_pids(torchserve, SLOW_MODEL) == [pid]  # the same worker: neither wedged nor replaced

    print(f"\nslow model: {SLOW_MODEL} {service_s:.2f} s per request; under a deadline of {deadline_s:.2f} s: "
          f"{late.status} after {late.seconds:.2f} s; the next request: {following.status} in "
          f"{following.seconds:.2f} s")
    assert late.status == 504 and late.seconds < deadline_s + 1.0  # at the deadline, not at the answer
    assert freed == 0  # its in-flight slot was given back
    # the worker finishes the abandoned inference, then serves this one: about two service times
    assert following.status == 200 and following.seconds < 2.5 * service_s + 2
