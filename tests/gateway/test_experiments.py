"""A/B experiments end to end: a real TorchServe with two digit ResNets, gateways with experiments files.

Assignment and stickiness (REST and gRPC), shadows that are slow or failing, reloading a good and a bad
file, feedback, reports (JSON and HTML), the record store on SQLite and on a real PostgreSQL, a SIGTERM
under load that loses no acknowledged request, and guardrails that trip on a failing variant but not on an equal one.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from loadtests.postgres import postgres_bin, running_postgres
from tests.conftest import free_port
from tests.gateway.conftest import RunningGateway, backend_for, running_gateway
from tests.reliability.harness import CONNECTION_FAILED, Load, gateway_process, grpc_client, rest_client
from zooserve._proto import zooserve_pb2 as pb
from zooserve.demo.digits import digit_images
from zooserve.gateway.settings import BackendSettings, Settings
from zooserve.store.build import ArchiveOptions, build_archive

DIGIT_MODELS = ("resnet8_digits", "resnet20_digits")

STICKY = """
experiments:
  - name: digits_ab
    control: small
    assignment: {mode: sticky, key: X-User-ID}
    variants:
      - {name: small, model: resnet8_digits, weight: 50}
      - {name: large, model: resnet20_digits, weight: 50}
"""


@pytest.fixture(scope="module")
def digit_archives(model_store):
    """The two digit ResNets (fixed-seed weights: the tests need answers, not good ones) in the session store."""
    for name in DIGIT_MODELS:
        if not (model_store / f"{name}.mar").exists():
            build_archive(name, model_store, ArchiveOptions())
    return model_store


@pytest.fixture(scope="module")
def digits():
    _, test = digit_images()
    return test[:60]


def _dead_backend() -> BackendSettings:
    """A backend nothing listens on: every call fails at once (connection refused)."""
    port = free_port()
    return BackendSettings(inference_url=f"http://127.0.0.1:{port}", management_url=f"http://127.0.0.1:{port}",
                           grpc_address=f"127.0.0.1:{port}", key_dir=None)


@contextmanager
def _black_hole() -> Iterator[BackendSettings]:
    """A backend that accepts connections and never answers: every call hangs until its caller gives up."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        yield BackendSettings(inference_url=f"http://127.0.0.1:{port}", management_url=f"http://127.0.0.1:{port}",
                              grpc_address=f"127.0.0.1:{port}", key_dir=None)


@pytest.fixture(scope="module")
def experiment_gateway(loop_thread, torchserve, digit_archives, tmp_path_factory):
    """``with experiment_gateway(yaml_text, **settings) as gateway:`` a gateway with that experiments file."""

    @contextmanager
    def start(text: str, backends: dict[str, BackendSettings] | None = None, **settings) -> Iterator[RunningGateway]:
        directory = tmp_path_factory.mktemp("experiments")
        path = directory / "experiments.yaml"
        path.write_text(text)
        config = Settings(host="127.0.0.1", rest_port=0, grpc_port=0,
                          backends={"local": backend_for(torchserve), **(backends or {})},
                          experiments_file=path, records_path=directory / "records.sqlite3", **settings)
        with running_gateway(loop_thread, config) as running:
            running.experiments_file = path
            yield running

    return start


def _predict(gateway: RunningGateway, name: str, png: bytes, user: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "image/png"} | ({"X-User-ID": user} if user else {})
    return gateway.http.post(f"/predict/{name}", content=png, headers=headers)


def _records(loop_thread, gateway: RunningGateway, experiment: str) -> list[dict]:
    return loop_thread.run(gateway.server.experiments.store.records(experiment))


@pytest.fixture(scope="module")
def sticky(experiment_gateway):
    with experiment_gateway(STICKY) as gateway:
        yield gateway


def test_variants_are_sticky_per_user_and_named_in_the_answer(sticky, digits):
    seen: dict[str, str] = {}
    for round_ in range(2):
        for i in range(16):
            response = _predict(sticky, "digits_ab", digits[i].png, user=f"user-{i}")
            assert response.status_code == 200, response.text
            body, variant = response.json(), response.headers["X-Variant"]
            assert body["experiment"] == "digits_ab" and body["variant"] == variant
            assert body["model"] == {"small": "resnet8_digits", "large": "resnet20_digits"}[variant]
            assert body["request_id"] == response.headers["X-Request-ID"]
            assert seen.setdefault(f"user-{i}", variant) == variant, "a user changed variant"
    assert set(seen.values()) == {"small", "large"}  # 16 users, 50/50: both (a 2 * 2**-16 chance otherwise)
    # a plain model answers without experiment fields or X-Variant
    plain = _predict(sticky, "resnet8_digits", digits[0].png)
    assert plain.status_code == 200 and plain.json()["variant"] is None and "X-Variant" not in plain.headers


def test_grpc_predict_on_an_experiment_uses_the_metadata_key(sticky, digits):
    for user in ("user-1", "user-2", "user-3"):
        expected = _predict(sticky, "digits_ab", digits[0].png, user=user).headers["X-Variant"]
        reply, call = sticky.stub.Predict.with_call(pb.PredictRequest(model="digits_ab", image=digits[0].png),
                                                    metadata=(("x-user-id", user),), timeout=60)
        assert reply.experiment == "digits_ab" and reply.variant == expected
        assert dict(call.trailing_metadata())["x-variant"] == expected


def test_feedback_is_stored_once_per_known_request(sticky, digits):
    rid = _predict(sticky, "digits_ab", digits[0].png, user="fb").json()["request_id"]
    created = sticky.http.post("/feedback", json={"request_id": rid, "label": digits[0].label})
    assert created.status_code == 201, created.text
    assert created.json()["request_id"] == rid and created.json()["label_index"] == digits[0].label
    again = sticky.http.post("/feedback", json={"request_id": rid, "label": digits[0].label})
    assert again.status_code == 409 and again.json()["error"]["code"] == "duplicate_feedback"
    assert "already has feedback" in again.json()["error"]["message"]
    unknown = sticky.http.post("/feedback", json={"request_id": "no-such-request", "label": 1})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_request"
    other = _predict(sticky, "digits_ab", digits[1].png, user="fb").json()["request_id"]
    for bad in (10, -1, "eleven"):
        refused = sticky.http.post("/feedback", json={"request_id": other, "label": bad})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "bad_label", refused.text
    assert sticky.http.post("/feedback", json={"request_id": other}).status_code == 422  # no label at all
    by_name = sticky.http.post("/feedback", json={"request_id": other, "label": str(digits[1].label)})
    assert by_name.status_code == 201 and by_name.json()["label"] == str(digits[1].label)


def test_report_counts_what_was_sent_and_renders_as_html(experiment_gateway, digits):
    with experiment_gateway(STICKY.replace("digits_ab", "reported")) as gateway:
        tally: dict[str, list[int]] = {"small": [0, 0], "large": [0, 0]}  # correct, labelled
        for i, digit in enumerate(digits[:30]):
            response = _predict(gateway, "reported", digit.png, user=f"u{i}")
            body = response.json()
            assert gateway.http.post("/feedback", json={"request_id": body["request_id"],
                                                        "label": digit.label}).status_code == 201
            tally[body["variant"]][0] += body["predictions"][0]["index"] == digit.label
            tally[body["variant"]][1] += 1
        report = gateway.http.get("/experiments/reported/report").json()
        variants = {v["variant"]: v for v in report["variants"]}
        for name, (correct, labelled) in tally.items():
            figures = variants[name]
            assert figures["requests"] == figures["labelled"] == labelled and figures["errors"] == 0
            assert figures["correct"] == correct and figures["accuracy"] == pytest.approx(correct / labelled)
            low, high = figures["accuracy_ci"]
            assert 0 <= low <= figures["accuracy"] <= high <= 1
            assert all(figures["latency_ms"][p] > 0 for p in ("p50", "p95", "p99"))
        (comparison,) = report["comparisons"]
        assert comparison["variant"] == "large" and comparison["against"] == "small"
        assert 0 <= comparison["accuracy"]["p_value"] <= 1 and comparison["verdict"]
        html = gateway.http.get("/experiments/reported/report", params={"format": "html"})
        assert html.headers["content-type"].startswith("text/html") and "<svg" in html.text
        assert "reported" in html.text
        by_accept = gateway.http.get("/experiments/reported/report", headers={"Accept": "text/html"})
        assert by_accept.headers["content-type"].startswith("text/html")
        assert gateway.http.get("/experiments/nope/report").status_code == 404


def test_slow_and_failing_shadows_never_touch_the_primary(experiment_gateway, loop_thread, digits):
    text = """
experiments:
  - name: shadowed
    control: a
    variants:
      - {name: a, model: resnet8_digits, weight: 1}
      - {name: b, model: resnet8_digits, weight: 1}
    shadows: [resnet20_digits, resnet18, squeezenet1_0]
"""
    with _black_hole() as hole, experiment_gateway(
        text, backends={"hole": hole, "dead": _dead_backend()}, routes={"resnet18": "hole", "squeezenet1_0": "dead"},
        shadow_timeout_s=5.0,
    ) as gateway:
        for model in ("resnet8_digits", "resnet20_digits"):  # loaded before anything is timed
            assert _predict(gateway, model, digits[0].png).status_code == 200
        assert _predict(gateway, "shadowed", digits[0].png).status_code == 200
        latencies = []
        for digit in digits[1:6]:
            started = time.perf_counter()
            response = _predict(gateway, "shadowed", digit.png)
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200 and response.json()["model"] == "resnet8_digits"
            # answered while its resnet18 shadow still hangs (5 s): the primary did not wait for it
            rid = response.json()["request_id"]
            pending = [r for r in _records(loop_thread, gateway, "shadowed")
                       if r["request_id"] == rid and r["model"] == "resnet18"]
            assert pending == []
        assert max(latencies) < 5.0, latencies
        time.sleep(5.5)
        rows = _records(loop_thread, gateway, "shadowed")
    primaries = [r for r in rows if r["kind"] == "primary"]
    assert len(primaries) == 6 and {r["status"] for r in primaries} == {200}
    shadows = {(r["request_id"], r["model"]): r for r in rows if r["kind"] == "shadow"}
    for primary in primaries[1:]:
        rid = primary["request_id"]
        assert shadows[rid, "resnet18"]["status"] == 504  # timed out after shadow_timeout_s
        assert shadows[rid, "resnet18"]["latency_ms"] >= 4900
        assert shadows[rid, "squeezenet1_0"]["status"] == 503  # backend down
        real = shadows[rid, "resnet20_digits"]
        assert real["status"] == 200 and real["agrees"] == (real["top1_index"] == primary["top1_index"])


def test_reload_takes_a_good_file_and_keeps_the_running_config_on_a_bad_one(experiment_gateway, digits):
    with experiment_gateway(STICKY.replace("digits_ab", "reloadable"), experiments_reload_interval_s=0.1) as gateway:
        listed = gateway.http.get("/experiments").json()
        assert [e["name"] for e in listed["experiments"]] == ["reloadable"] and listed["last_error"] is None
        path: Path = gateway.experiments_file
        good = path.read_text()
        for bad, message in ((good.replace("weight: 50}", "weight: fifty}", 1), "variants.0.weight"),
                             (good.replace("name: reloadable", "name: resnet18"), "has the name of a model")):
            path.write_text(bad)
            error = _wait_for(lambda: gateway.http.get("/experiments").json()["last_error"])
            assert message in error and str(path) in error
            if "weight" in message:  # the line of the bad field
                assert f"line {bad.splitlines().index(next(l for l in bad.splitlines() if 'fifty' in l)) + 1}" in error
            assert _predict(gateway, "reloadable", digits[0].png, user="x").status_code == 200  # still running
            path.write_text(good)
            _wait_for(lambda: gateway.http.get("/experiments").json()["last_error"] is None)
        path.write_text(good + good.split("experiments:\n")[1].replace("reloadable", "added").replace("50", "10"))
        _wait_for(lambda: "added" in [e["name"] for e in gateway.http.get("/experiments").json()["experiments"]])
        response = _predict(gateway, "added", digits[0].png, user="x")
        assert response.status_code == 200 and response.json()["experiment"] == "added"
        described = gateway.http.get("/experiments/added").json()
        assert [v["current_weight"] for v in described["variants"]] == [10, 10]


def _wait_for(condition, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)
    return value


def _postgres_or_sqlite(request):
    if request.param == "sqlite":
        yield None
    elif postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed (scripts/system-deps.sh postgresql)")
    else:
        with running_postgres() as url:
            yield url


database = pytest.fixture(params=["sqlite", "postgresql"])(_postgres_or_sqlite)


def test_records_and_feedback_reach_the_database(experiment_gateway, database, digits, tmp_path):
    name = "stored"
    with experiment_gateway(STICKY.replace("digits_ab", name), database_url=database) as gateway:
        ids = []
        for i, digit in enumerate(digits[:8]):
            rid = _predict(gateway, name, digit.png, user=f"s{i}").json()["request_id"]
            assert gateway.http.post("/feedback", json={"request_id": rid, "label": digit.label}).status_code == 201
            ids.append(rid)
        report = gateway.http.get(f"/experiments/{name}/report").json()
        assert sum(v["requests"] for v in report["variants"]) == 8
        assert sum(v["labelled"] for v in report["variants"]) == 8
        records_path = gateway.server.settings.records_path
    # stopped: read the database behind the gateway's back
    query = "SELECT r.request_id, f.label_index FROM experiment_records r JOIN experiment_feedback f " \
            "ON f.request_id = r.request_id WHERE r.experiment = 'stored' AND r.kind = 'primary'"
    if database is None:
        with sqlite3.connect(records_path) as connection:
            rows = connection.execute(query).fetchall()
    else:
        import psycopg

        with psycopg.connect(database) as connection:
            rows = connection.execute(query).fetchall()
    assert sorted(rows) == sorted(zip(ids, [d.label for d in digits[:8]]))


def test_sigterm_under_load_loses_no_acknowledged_request(torchserve, digit_archives, digits, tmp_path):
    """SIGTERM while eight clients (REST and gRPC) keep sending: the requests in flight are answered 200, every
    200 is in the record store, and connections opened after the signal are refused."""
    experiments = tmp_path / "experiments.yaml"
    experiments.write_text(STICKY.replace("digits_ab", "durable"))
    records = tmp_path / "records.sqlite3"
    # nothing is written before the shutdown: the SIGTERM's flush must write it all
    with gateway_process(torchserve, experiments_file=experiments, records_path=records,
                         record_flush_interval_s=3600) as gateway:
        clients = [rest_client(gateway.url, "durable", digits[i].png, "image/png", {"X-User-ID": f"d{i}"})
                   for i in range(6)]
        clients += [grpc_client(gateway.grpc_target, "durable", digits[i].png, metadata=(("x-user-id", f"g{i}"),))
                    for i in range(2)]
        warm = [send() for send in clients]  # both variants' models loaded before the clock
        assert {a.status for a in warm} == {200}
        with Load(clients, pause_s=0.05) as load:
            time.sleep(2)
            signalled = time.monotonic()
            gateway.process.popen.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            with pytest.raises(httpx.ConnectError):  # the listeners closed at once
                httpx.get(f"{gateway.url}/healthz", timeout=5)
            output = gateway.process.finish()
            process_exit_s = time.monotonic() - signalled
    with sqlite3.connect(records) as connection:
        stored = {r[0] for r in connection.execute(
            "SELECT request_id FROM experiment_records WHERE experiment = 'durable' AND kind = 'primary'")}
    acknowledged = {a.request_id for a in warm + load.answers if a.status == 200}
    finished = [a for a in load.answers if a.sent < signalled < a.done and a.status == 200]
    refused = [a for a in load.answers if a.status == CONNECTION_FAILED]
    print(f"\ngateway SIGTERM: {len(warm) + len(load.answers)} requests from 8 clients, {len(acknowledged)} answered "
          f"200 (all {len(acknowledged & stored)} in the record store), {len(finished)} of them in flight at the "
          f"signal; {len(refused)} refused at the connection after it; exit {process_exit_s:.1f} s after the signal")
    # an answer, or a connection refused or closed before the request was read: never an error, never a hang
    assert {a.status for a in load.answers} <= {200, CONNECTION_FAILED}
    assert finished, "no request was in flight at the signal"
    assert len(acknowledged) >= 40 and acknowledged <= stored, len(acknowledged - stored)
    assert "stopping: letting in-flight requests finish" in output


GUARDED = """
experiments:
  - name: guarded
    control: good
    variants:
      - {name: good, model: resnet8_digits, weight: 50}
      - {name: bad, model: resnet20_digits, weight: 50}
    guardrails: {max_error_rate_increase: 0.05, max_p99_latency_ratio: 3.0, min_requests: 10}
  - name: equal
    control: x
    variants:
      - {name: x, model: resnet8_digits, weight: 50}
      - {name: y, model: resnet8_digits, weight: 50}
    guardrails: {max_error_rate_increase: 0.05, max_p99_latency_ratio: 3.0, min_requests: 10}
"""


def test_a_guardrail_stops_a_failing_variant_and_spares_an_equal_one(experiment_gateway, loop_thread, digits,
                                                                     tmp_path):
    # the "bad" variant's model lives on a backend that is down: every request it gets fails (503)
    token = tmp_path / "operator-token"
    token.write_text("s3cret-operator-token\n")
    with experiment_gateway(GUARDED, backends={"dead": _dead_backend()}, routes={"resnet20_digits": "dead"},
                            guardrail_interval_s=0.2, operator_token_file=token) as gateway:
        statuses = {"good": set(), "bad": set()}
        for i in range(200):
            guarded = _predict(gateway, "guarded", digits[i % len(digits)].png)
            equal = _predict(gateway, "equal", digits[i % len(digits)].png)
            assert equal.status_code == 200
            statuses[guarded.headers["X-Variant"]].add(guarded.status_code)
            if _stopped(gateway, "guarded"):
                break
        assert statuses == {"good": {200}, "bad": {503}}
        stopped = _stopped(gateway, "guarded")
        assert list(stopped) == ["bad"] and "error rate" in stopped["bad"]
        for digit in digits[:10]:  # no traffic for the stopped variant
            assert _predict(gateway, "guarded", digit.png).headers["X-Variant"] == "good"
        assert gateway.metric("zoo_experiment_guardrail_trips_total", experiment="guarded", variant="bad",
                              guardrail="error_rate") == 1
        assert gateway.metric("zoo_experiment_variant_weight", experiment="guarded", variant="bad") == 0
        report = gateway.http.get("/experiments/guarded/report").json()
        assert "error rate" in report["state"]["stopped"]["bad"]
        bad = next(v for v in report["variants"] if v["variant"] == "bad")
        assert bad["errors"] == bad["requests"] >= 10 and bad["error_rate"] == 1.0  # errors are recorded too
        # the equal experiment: enough requests on both sides, and no trip (also on a direct evaluation)
        seen = {"x": 0, "y": 0}
        for i in range(200):
            equal = _predict(gateway, "equal", digits[i % len(digits)].png)
            assert equal.status_code == 200
            seen[equal.headers["X-Variant"]] += 1
            if min(seen.values()) >= 15:
                break
        counts = {v["variant"]: v["requests"] for v in gateway.http.get("/experiments/equal/report").json()["variants"]}
        assert min(counts.values()) >= 15, counts
        loop_thread.run(gateway.server.experiments.router.evaluate())
        assert not _stopped(gateway, "equal")
        # an operator restores the variant (the next evaluation would stop it again: its errors are recorded)
        operator = {"Authorization": "Bearer s3cret-operator-token"}
        assert gateway.http.post("/experiments/guarded/variants/bad/restore").status_code == 401
        restored = gateway.http.post("/experiments/guarded/variants/bad/restore", headers=operator)
        assert restored.status_code == 200
        assert {v["name"]: v["current_weight"] for v in restored.json()["variants"]} == {"good": 50, "bad": 50}
        events = restored.json()["events"]
        assert [e["event"] for e in events] == ["stopped", "restored"] and events[0]["guardrail"] == "error_rate"
        assert gateway.http.post("/experiments/guarded/variants/nope/restore", headers=operator).status_code == 404


def _stopped(gateway: RunningGateway, name: str) -> dict[str, str]:
    described = gateway.http.get(f"/experiments/{name}").json()
    return {v["name"]: v["stopped"] for v in described["variants"] if v["stopped"]}


def test_experiment_routes_without_an_experiments_file(gateway):
    assert gateway.http.get("/experiments").json() == {"file": None, "last_error": None, "experiments": []}
    assert gateway.http.post("/feedback", json={"request_id": "x", "label": 1}).status_code == 404
    assert gateway.http.get("/experiments/x/report").status_code == 404
