"""The experiment routes that steer (stop, restore, reload) need the operator's bearer token; feedback needs its
own when one is configured; reports are open unless configured otherwise. A gateway with an experiments file
and no reachable backend: none of these routes calls TorchServe."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from tests.gateway.conftest import running_gateway
from tests.gateway.test_experiments import _dead_backend
from zooserve.gateway.settings import Settings

EXPERIMENTS = """
experiments:
  - name: guarded
    control: a
    variants:
      - {name: a, model: resnet18, weight: 50}
      - {name: b, model: squeezenet1_0, weight: 50}
"""
OPERATOR, FEEDBACK = "operator-7f3a9c", "feedback-1b2e4d"


@pytest.fixture
def start(loop_thread, tmp_path):
    (tmp_path / "experiments.yaml").write_text(EXPERIMENTS)
    (tmp_path / "operator").write_text(OPERATOR + "\n")  # a trailing newline, as `echo` writes it
    (tmp_path / "feedback").write_text(FEEDBACK)
    dead = _dead_backend()

    @contextmanager
    def gateway(**settings):
        config = Settings(host="127.0.0.1", rest_port=0, grpc_port=0, backends={"local": dead},
                          experiments_file=tmp_path / "experiments.yaml", records_path=tmp_path / "records.sqlite3",
                          **settings)
        with running_gateway(loop_thread, config) as running:
            yield running

    return gateway


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


STOP = ("/experiments/guarded/variants/b/stop", {"reason": "looks wrong"})


def test_operator_routes_need_the_operator_token(start, tmp_path):
    with start(operator_token_file=tmp_path / "operator", feedback_token_file=tmp_path / "feedback") as gateway:
        for headers in ({}, _bearer("wrong"), _bearer(FEEDBACK), {"Authorization": f"Basic {OPERATOR}"}):
            refused = gateway.http.post(STOP[0], json=STOP[1], headers=headers)
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
            assert refused.json()["error"]["code"] == "unauthorized"
            assert gateway.http.post("/experiments/guarded/variants/b/restore", headers=headers).status_code == 401
            assert gateway.http.post("/experiments/reload", headers=headers).status_code == 401
        assert gateway.http.get("/experiments/guarded").json()["variants"][1]["stopped"] is None, "nothing changed"
        stopped = gateway.http.post(STOP[0], json=STOP[1], headers=_bearer(OPERATOR))
        assert stopped.status_code == 200 and stopped.json()["variants"][1]["stopped"].endswith("looks wrong")
        assert stopped.json()["variants"][1]["current_weight"] == 0
        control = gateway.http.post("/experiments/guarded/variants/a/stop", json=STOP[1], headers=_bearer(OPERATOR))
        assert control.status_code == 409 and control.json()["error"]["code"] == "control_variant"
        restored = gateway.http.post("/experiments/guarded/variants/b/restore", headers=_bearer(OPERATOR))
        assert restored.status_code == 200 and restored.json()["variants"][1]["current_weight"] == 50
        assert [e["event"] for e in restored.json()["events"]] == ["stopped", "restored"]
        reloaded = gateway.http.post("/experiments/reload", headers=_bearer(OPERATOR))
        assert reloaded.status_code == 200 and reloaded.json()["last_error"] is None
        # feedback: its own token (the request id is unknown: 404 means the token was taken)
        body = {"request_id": "no-such-request", "label": 1}
        assert gateway.http.post("/feedback", json=body).status_code == 401
        assert gateway.http.post("/feedback", json=body, headers=_bearer(OPERATOR)).status_code == 401
        assert gateway.http.post("/feedback", json=body, headers=_bearer(FEEDBACK)).status_code == 404
        # reports stay readable without a token unless configured otherwise
        assert gateway.http.get("/experiments/guarded/report").status_code == 200


def test_a_rotated_token_file_takes_effect_without_a_restart(start, tmp_path):
    with start(operator_token_file=tmp_path / "operator") as gateway:
        assert gateway.http.post("/experiments/reload", headers=_bearer(OPERATOR)).status_code == 200
        (tmp_path / "operator").write_text("rotated-9d8c7b")
        assert gateway.http.post("/experiments/reload", headers=_bearer(OPERATOR)).status_code == 401
        assert gateway.http.post("/experiments/reload", headers=_bearer("rotated-9d8c7b")).status_code == 200


def test_without_a_token_file_control_is_refused_and_feedback_open(start):
    with start() as gateway:
        refused = gateway.http.post(STOP[0], json=STOP[1], headers=_bearer("anything"))
        assert refused.status_code == 403 and "ZOO_OPERATOR_TOKEN_FILE" in refused.json()["error"]["message"]
        assert gateway.http.post("/feedback", json={"request_id": "x", "label": 1}).status_code == 404


def test_reports_can_need_the_operator_token(start, tmp_path):
    with start(operator_token_file=tmp_path / "operator", reports_need_token=True) as gateway:
        for path in ("/experiments", "/experiments/guarded", "/experiments/guarded/report"):
            assert gateway.http.get(path).status_code == 401
            assert gateway.http.get(path, headers=_bearer(OPERATOR)).status_code == 200


def test_an_empty_or_missing_token_file_stops_the_start(start, tmp_path):
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"), start(operator_token_file=tmp_path / "empty"):
        pass
    with pytest.raises(FileNotFoundError), start(feedback_token_file=tmp_path / "missing"):
        pass
