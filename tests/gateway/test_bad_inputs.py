"""The bad-input corpus (tests/reliability/corpus.py) over REST and gRPC: each input gets its documented
4xx and message, the service answers normally afterwards, and no TorchServe worker died."""

from __future__ import annotations

import grpc
import pytest

from tests.conftest import photo
from tests.gateway.conftest import pb
from tests.reliability.corpus import bad_images, valid_but_unusual

GRPC_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 413: grpc.StatusCode.INVALID_ARGUMENT,
              415: grpc.StatusCode.INVALID_ARGUMENT, 422: grpc.StatusCode.INVALID_ARGUMENT}
BAD = bad_images()


def worker_pids(management, model: str) -> list[int]:
    return sorted(w["pid"] for w in management.request("GET", f"/models/{model}").json()[0]["workers"])


@pytest.fixture(scope="module")
def loaded(gateway, management):
    assert gateway.predict("resnet18").status_code == 200
    return worker_pids(management, "resnet18")


@pytest.mark.parametrize("case", BAD, ids=[c.name for c in BAD])
def test_rest_answers_each_bad_image(gateway, loaded, case):
    response = gateway.predict("resnet18", case.body, headers={"Content-Type": "application/octet-stream"})
    body = response.json()
    assert response.status_code == case.status, body
    assert body["error"]["message"].startswith(case.message), body
    assert "Traceback" not in response.text and "/__w/" not in response.text


@pytest.mark.parametrize("case", BAD, ids=[c.name for c in BAD])
def test_grpc_answers_each_bad_image(gateway, loaded, case):
    with pytest.raises(grpc.RpcError) as caught:
        gateway.stub.Predict(pb.PredictRequest(model="resnet18", image=case.body), timeout=120)
    assert caught.value.code() != grpc.StatusCode.OK
    assert caught.value.code() in (GRPC_CODES[case.status], grpc.StatusCode.INVALID_ARGUMENT)
    assert caught.value.details().startswith(case.message)


@pytest.mark.parametrize("name", list(valid_but_unusual()))
def test_unusual_but_valid_images_are_classified(gateway, loaded, name):
    response = gateway.predict("resnet18", valid_but_unusual()[name], headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 5


REQUEST_CASES = [
    # (description, method, path, kwargs, status, message start)
    ("unknown model", "POST", "/predict/resnet1800", {}, 404, "unknown model 'resnet1800'"),
    ("overlong model name", "POST", "/predict/" + "a" * 1000, {}, 404, "unknown model"),
    ("non-UTF-8 model name", "POST", "/predict/%FF%FE", {}, 404, "unknown model"),
    ("path-like model name", "POST", "/predict/..%2Fetc%2Fpasswd", {}, 404, "not found: POST /"),
    ("topk zero", "POST", "/predict/resnet18", {"params": {"topk": "0"}}, 400,
     "topk must be a whole number from 1 to 1000, not '0'"),
    ("topk too large", "POST", "/predict/resnet18", {"params": {"topk": "1001"}}, 400,
     "topk must be a whole number from 1 to 1000, not '1001'"),
    ("topk negative", "POST", "/predict/resnet18", {"params": {"topk": "-3"}}, 400, "topk must be a whole number"),
    ("topk not a number", "POST", "/predict/resnet18", {"params": {"topk": "abc"}}, 422,
     "invalid request: query.topk"),
    ("bad version", "POST", "/predict/resnet18/v%201%3B", {}, 422, "invalid request: path.version"),
    ("oversize body", "POST", "/predict/resnet18", {"content": b"\xff" * (21 * 1024 * 1024)}, 413, "body too large"),
    ("malformed multipart", "POST", "/predict/resnet18",
     {"content": b"--xyz\r\nnot a part", "headers": {"Content-Type": "multipart/form-data; boundary=xyz"}}, 400, ""),
    ("multipart without an image field", "POST", "/predict/resnet18",
     {"files": {"picture": b"x"}, "content": None, "headers": {}}, 400, "multipart form without a file field 'image'"),
    ("wrong method", "GET", "/predict/resnet18", {}, 405, "method not allowed: GET /predict/resnet18"),
]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES])
def test_bad_requests_get_a_clear_4xx(gateway, loaded, case):
    _, method, path, kwargs, status, message = case
    kwargs = {"content": photo("chelsea.jpg"), "headers": {"Content-Type": "image/jpeg"}} | kwargs
    response = gateway.http.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"].startswith(message) and error["code"], error
    assert "Traceback" not in response.text


def test_after_the_corpus_the_service_answers_and_no_worker_died(gateway, loaded, management, torchserve):
    assert gateway.predict("resnet18").status_code == 200
    assert worker_pids(management, "resnet18") == loaded, "a worker was restarted"
    log = (torchserve.workdir / "logs" / "ts_log.log").read_text(errors="replace")
    assert "Worker died" not in log and "WORKER_STOPPED" not in log
