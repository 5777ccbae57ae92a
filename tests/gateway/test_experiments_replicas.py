"""Three gateway processes (``python -m zooserve.gateway``) on one real PostgreSQL and one TorchServe, under
load: a guardrail trip, a stop and a restore made through one replica, and a ramp step, are seen by every
replica within the stated bound (ZOO_EXPERIMENT_STATE_INTERVAL_S plus one read; the measured times are
printed); one replica only evaluates the guardrails; a key gets the same variant on every replica, and the
split across all of them matches the weights (chi-square)."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections import Counter
from contextlib import ExitStack

import httpx
import pytest
from scipy.stats import chisquare

from loadtests.postgres import postgres_bin, running_postgres
from tests.conftest import free_port
from tests.gateway.test_experiments import digit_archives, digits  # noqa: F401 (fixtures)
from tests.reliability.harness import Answer, Load, Moment, gateway_process

pytestmark = pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed")

STATE_INTERVAL_S = 0.5
BOUND_S = STATE_INTERVAL_S + 2.0  # the interval, one read, and room for a 2-core machine running it all
TOKEN = "replicas-operator-token"
WEIGHTS = {"a": 50, "b": 30, "c": 20}
EXPERIMENTS = f"""
experiments:
  - name: split
    control: a
    assignment: {{mode: sticky, key: X-User-ID}}
    variants:
{chr(10).join(f"      - {{name: {v}, model: resnet8_digits, weight: {w}}}" for v, w in WEIGHTS.items())}
  - name: guarded
    control: good
    variants:
      - {{name: good, model: resnet8_digits, weight: 50}}
      - {{name: bad, model: squeezenet1_0, weight: 50}}
    guardrails: {{max_error_rate_increase: 0.05, min_requests: 20}}
  - name: manual
    control: x
    variants:
      - {{name: x, model: resnet8_digits, weight: 50}}
      - {{name: y, model: resnet8_digits, weight: 50}}
  - name: ramped
    control: base
    variants:
      - {{name: base, model: resnet8_digits, weight: 50}}
      - {{name: canary, model: resnet8_digits, weight: 50}}
    ramp: {{variant: canary, start_weight: 1, step: 1, every_s: 8, max_weight: 100}}  # never done in a test
"""


def _backends(torchserve) -> str:
    """TorchServe, and a backend nothing listens on for squeezenet1_0: the 'bad' variant fails every request."""
    port = free_port()
    return json.dumps({
        "local": {"inference_url": torchserve.inference_url, "management_url": torchserve.management_url,
                  "grpc_address": f"127.0.0.1:{torchserve.ports.grpc_inference}", "key_dir": str(torchserve.workdir)},
        "dead": {"inference_url": f"http://127.0.0.1:{port}", "management_url": f"http://127.0.0.1:{port}",
                 "grpc_address": f"127.0.0.1:{port}", "key_dir": None},
    })


class Client:
    """A closed-loop client of one experiment on one replica; every answer's wall-clock time and variant kept."""

    def __init__(self, url: str, experiment: str, png: bytes):
        self.http = httpx.Client(base_url=url, timeout=60)
        self.experiment, self.png = experiment, png
        self.keys = (f"{uuid.uuid4().hex[:8]}-{i}" for i in itertools.count())
        self.seen: list[tuple[float, int, str | None]] = []

    def __call__(self) -> Answer:
        sent = time.monotonic()
        response = self.http.post(f"/predict/{self.experiment}", content=self.png,
                                  headers={"Content-Type": "image/png", "X-User-ID": next(self.keys)})
        self.seen.append((time.time(), response.status_code, response.headers.get("X-Variant")))
        return Answer(sent, time.monotonic(), response.status_code)


def _variant(url: str, experiment: str, variant: str) -> dict:
    described = httpx.get(f"{url}/experiments/{experiment}", timeout=10).json()
    return next(v for v in described["variants"] if v["name"] == variant)


def _lags(urls: list[str], condition, act=None, event=None, timeout: float = 60) -> list[float]:
    """Seconds from a change until each replica showed it (``condition``, polled every 50 ms from one thread
    per replica): a change made by ``act`` counts from just before it was sent; one a replica makes itself
    counts from the time of its ``event()`` in the database."""
    offset = time.time() - time.monotonic()
    moments = [Moment(lambda url=url: condition(url), interval=0.05) for url in urls]
    sent = time.time()
    if act is not None:
        act()
    seen = [m.wait(timeout, f"replica {i}") + offset for i, m in enumerate(moments)]
    at = event() if event is not None else sent
    return [round(s - at, 3) for s in seen]


def _operator(url: str, path: str, **kwargs) -> None:
    answer = httpx.post(f"{url}{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30, **kwargs)
    assert answer.status_code == 200, answer.text


def _event_time(url: str, experiment: str, event: str, variant: str) -> float:
    events = httpx.get(f"{url}/experiments/{experiment}", timeout=10).json()["events"]
    return max(e["time"] for e in events if e["event"] == event and e["variant"] == variant)


def test_three_replicas_share_one_experiment_state(torchserve, digit_archives, digits, tmp_path):  # noqa: F811
    (tmp_path / "experiments.yaml").write_text(EXPERIMENTS)
    (tmp_path / "token").write_text(TOKEN)
    png = digits[0].png
    with ExitStack() as stack:
        url = stack.enter_context(running_postgres())
        settings = dict(experiments_file=tmp_path / "experiments.yaml", database_url=url,
                        backends=_backends(torchserve), routes=json.dumps({"squeezenet1_0": "dead"}),
                        guardrail_interval_s=0.5, experiment_state_interval_s=STATE_INTERVAL_S,
                        operator_token_file=tmp_path / "token")
        replicas = [stack.enter_context(gateway_process(torchserve, **settings)) for _ in range(3)]
        urls = [r.url for r in replicas]
        for key in (f"sticky-{i}" for i in range(20)):  # the first requests also load the model
            answers = {httpx.post(f"{u}/predict/split", content=png, timeout=120,
                                  headers={"Content-Type": "image/png", "X-User-ID": key}).headers["X-Variant"]
                       for u in urls}
            assert len(answers) == 1, f"key {key} got {answers} from the three replicas"

        def bad_stopped(u: str) -> bool:
            return _variant(u, "guarded", "bad")["stopped"] is not None

        split = [Client(u, "split", png) for u in urls]
        guarded = [Client(u, "guarded", png) for u in urls]
        with Load(split + guarded, pause_s=0.02):
            tripped = _lags(urls, bad_stopped, event=lambda: _event_time(urls[0], "guarded", "stopped", "bad"))
            all_stopped_at = time.time()
            manual = {
                "stop": _lags(urls, lambda u: _variant(u, "manual", "y")["current_weight"] == 0,
                              act=lambda: _operator(urls[0], "/experiments/manual/variants/y/stop",
                                                    json={"reason": "replica test"})),
                "restore": _lags(urls, lambda u: _variant(u, "manual", "y")["current_weight"] == 50,
                                 act=lambda: _operator(urls[1], "/experiments/manual/variants/y/restore")),
            }
            weight = _variant(urls[2], "ramped", "canary")["current_weight"]
            ramped = _lags(urls, lambda u: _variant(u, "ramped", "canary")["current_weight"] > weight,
                           event=lambda: _event_time(urls[0], "ramped", "ramped", "canary"))
            while sum(len(c.seen) for c in split) < 600:
                time.sleep(0.5)
        trips = [r.metric("zoo_experiment_guardrail_trips_total", experiment="guarded", variant="bad")
                 for r in replicas]
        events = httpx.get(f"{urls[2]}/experiments/guarded", timeout=10).json()["events"]

    print(f"\nthree replicas, state reread every {STATE_INTERVAL_S} s, polled every 0.05 s: seen after (s) a "
          f"guardrail trip {tripped}, a stop through replica 0 {manual['stop']}, a restore through replica 1 "
          f"{manual['restore']}, a ramp step {ramped}")
    for lags in (tripped, manual["stop"], manual["restore"], ramped):
        assert max(lags) <= BOUND_S, lags
    assert sorted(trips) == [0, 0, 1], "one replica evaluated and stopped it"
    assert [e["event"] for e in events if e["variant"] == "bad"] == ["stopped"]
    late = [v for c in guarded for t, _, v in c.seen if t > all_stopped_at + 0.5]
    assert late and set(late) == {"good"}, "once every replica saw the stop, no request went to 'bad'"
    counts = Counter(v for c in split for _, status, v in c.seen if status == 200)
    observed = [counts[v] for v in WEIGHTS]
    expected = [sum(observed) * w / sum(WEIGHTS.values()) for w in WEIGHTS.values()]
    p_value = chisquare(observed, expected).pvalue
    print(f"split over the three replicas {dict(counts)} for weights {WEIGHTS}: chi-square p = {p_value:.3f}")
    assert sum(observed) >= 600 and p_value > 0.001
