"""The bad-input corpus (tests/reliability/corpus*.py) over all four protocols: REST, gRPC (ZooService), and the
Open Inference Protocol's REST and gRPC bindings. Each input gets its documented 4xx (or the gRPC code it
maps to) with its error code and message; valid but unusual images are classified; and afterwards the
service answers a normal request on every protocol and no TorchServe worker died (the last test: keep it
last, it is the point of the corpus)."""

from __future__ import annotations

import json

import grpc
import pytest

from tests.conftest import photo
from tests.gateway.bad_input_clients import (
    CLIENTS,
    assert_classified,
    assert_refused,
    default_image,
    v2_grpc_message,
    wait_until_loaded,
)
from tests.reliability.corpus import bad_images, valid_but_unusual
from tests.reliability.corpus_requests import (
    PROTOCOLS,
    Expect,
    bad_calls,
    rest_requests,
    v2_body,
    v2_grpc_requests,
    v2_rest_requests,
)

BAD = bad_images()
CALLS = [(protocol, call) for call in bad_calls() for protocol in PROTOCOLS if call.expected(protocol) is not None]


def worker_pids(management, model: str) -> list[int]:
    return sorted(w["pid"] for w in management.request("GET", f"/models/{model}").json()[0]["workers"])


@pytest.fixture(scope="module")
def loaded(gateway, management):
    """resnet18 loaded, and the pids of its workers before the corpus."""
    wait_until_loaded(gateway, "resnet18")
    return worker_pids(management, "resnet18")


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", BAD, ids=[c.name for c in BAD])
def test_each_bad_image_is_refused_on_every_protocol(gateway, loaded, case, protocol):
    answer = CLIENTS[protocol](gateway, case.body)
    assert_refused(answer, Expect(case.status, case.code, case.message), protocol)


def test_the_corpus_covers_what_it_must():
    """At least 40 bad images, and every kind of refusal the header check and the decoder make."""
    assert len(BAD) >= 40 and len({c.name for c in BAD}) == len(BAD)
    assert {c.code for c in BAD} == {"empty_body", "not_an_image", "unsupported_format", "corrupt_image",
                                     "image_too_small", "image_too_elongated", "image_too_large"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", list(valid_but_unusual()))
def test_unusual_but_valid_images_are_classified_on_every_protocol(gateway, loaded, name, protocol):
    assert_classified(CLIENTS[protocol](gateway, valid_but_unusual()[name]))


@pytest.mark.parametrize(("protocol", "call"), CALLS, ids=[f"{c.name}-{p}" for p, c in CALLS])
def test_bad_names_versions_topk_and_sizes_on_every_protocol(gateway, loaded, protocol, call):
    image = default_image() if call.image is None else call.image
    answer = CLIENTS[protocol](gateway, image, model=call.model, version=call.version, topk=call.topk)
    assert_refused(answer, call.expected(protocol), protocol)


REST = rest_requests()


@pytest.mark.parametrize("case", REST, ids=[c[0] for c in REST])
def test_bad_rest_requests(gateway, loaded, case):
    _, method, path, kwargs, status, code, message = case
    kwargs = {"content": photo("chelsea.jpg"), "headers": {"Content-Type": "image/jpeg"}} | kwargs
    response = gateway.http.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"].startswith(message), error
    assert "Traceback" not in response.text


V2_REST = v2_rest_requests()


@pytest.mark.parametrize("case", V2_REST, ids=[c[0] for c in V2_REST])
def test_bad_v2_rest_requests(gateway, loaded, case):
    _, body, headers, status, message = case
    response = gateway.http.post("/v2/models/resnet18/infer", content=body,
                                 headers={"Content-Type": "application/json"} | headers)
    assert response.status_code == status, response.text
    answer = response.json()
    assert set(answer) == {"error"} and answer["error"].startswith(message), answer
    assert "Traceback" not in response.text


def test_a_v2_id_that_utf8_cannot_carry_is_echoed_escaped(gateway, loaded):
    """JSON's escape of a lone surrogate decodes to a string UTF-8 cannot encode; the echo must not fail."""
    body = json.dumps(v2_body(id="\ud800 alone")).encode()
    response = gateway.http.post("/v2/models/resnet18/infer", content=body,
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "\ud800 alone"


V2_GRPC = v2_grpc_requests()


@pytest.mark.parametrize("case", V2_GRPC, ids=[c[0] for c in V2_GRPC])
def test_bad_v2_grpc_requests(gateway, loaded, case):
    _, request, status, code, message = case
    assert_refused(v2_grpc_message(gateway, request), Expect(status, code, message), "v2_grpc")


def test_an_undecodable_zooservice_request_is_invalid_argument(gateway, loaded):
    """Bytes that are not a PredictRequest at all: gRPC's own answer would be UNKNOWN (a server error)."""
    raw = gateway.channel.unary_unary("/zooserve.v1.ZooService/Predict")
    with pytest.raises(grpc.RpcError) as caught:
        raw(b"\x0a\xff\xff\xff", timeout=60)  # field 1 claims a length far past the end
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("malformed request: the bytes do not decode as a zooserve.v1.")


def test_after_the_corpus_the_service_answers_and_no_worker_died(gateway, loaded, management, torchserve):
    for protocol, client in CLIENTS.items():
        assert_classified(client(gateway, photo("chelsea.jpg")))
    assert worker_pids(management, "resnet18") == loaded, "a worker was restarted"
    log = (torchserve.workdir / "logs" / "ts_log.log").read_text(errors="replace")
    assert "Worker died" not in log and "WORKER_STOPPED" not in log
