"""The REST API over real sockets: every route, every client error with its exact status and message,
and the service still answering after each."""

from __future__ import annotations

import difflib
import io

import httpx
import pytest
from PIL import Image

from tests.conftest import encode, photo
from zooserve.gateway.rest.schemas import PredictResponse
from zooserve.handler.decode import ImageError, decode
from zooserve.zoo import list_models
from zooserve.zoo.runtimes import chosen_runtime

LIMIT = 20 * 1024 * 1024  # the default body cap


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"error"} and "Traceback" not in response.text
    return response.status_code, body["error"]["code"], body["error"]["message"]


def assert_serves(gateway) -> None:
    response = gateway.predict("resnet18")
    assert response.status_code == 200, response.text


def test_predict_raw_body_returns_the_backends_answer(gateway, torchserve):
    response = gateway.predict("resnet18", params={"topk": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    assert {k: body[k] for k in ("model", "version", "weights", "pretrained", "label_set")} == {
        "model": "resnet18", "version": "1.0", "weights": "fixed-seed", "pretrained": False, "label_set": "imagenet-1k"}
    direct = httpx.post(f"{torchserve.inference_url}/predictions/resnet18", content=photo("chelsea.jpg"),
                        headers={"Authorization": f"Bearer {torchserve.keys().inference}", "X-Topk": "3",
                                 "Content-Type": "application/octet-stream"}, timeout=60).json()
    assert body["predictions"] == direct["predictions"]  # passed through unchanged
    assert body["runtime"] == direct["runtime"] == chosen_runtime("resnet18")  # the archive's measured runtime
    assert set(body["timings"]) == {"total_ms", "backend_ms", "load_ms"}
    assert 0 < body["timings"]["backend_ms"] <= body["timings"]["total_ms"]


def test_predict_body_is_exactly_the_documented_schema(gateway):
    """The body is written without FastAPI's response_model pass: it must still be PredictResponse, every
    field present (none dropped or added on the way), as the OpenAPI document says."""
    body = gateway.predict("resnet18").json()
    assert PredictResponse.model_validate(body).model_dump(mode="json") == body
    assert set(body) == set(PredictResponse.model_fields)


@pytest.mark.parametrize("plain, routed", [
    ("/predict/resnet18?topk=3", "/predict/resnet18?topk=3&unused=1"),
    ("/predict/resnet18/1.0", "/predict/resnet18/1.0?unused=1"),
    ("/predict/resnt18", "/predict/resnt18?unused=1"),  # an error: the same body and headers either way
])
def test_fast_path_and_fastapi_route_answer_alike(gateway, plain, routed):
    """A plain prediction is served in front of FastAPI (rest/app.py RestApp), one with any other
    query parameter by FastAPI's route: the two must not differ in what the client sees."""
    def seen(path: str) -> tuple[int, dict, dict]:
        answer = gateway.http.post(path, content=photo("chelsea.jpg"), headers={"Content-Type": "image/jpeg",
                                                                                 "X-Request-ID": "same-id"})
        body = answer.json()
        body.pop("timings", None)
        headers = {k: v for k, v in answer.headers.items() if k not in ("date", "content-length")}
        return answer.status_code, body, headers

    assert seen(plain) == seen(routed)


def test_fast_path_takes_plain_predictions_only(gateway):
    """Which requests RestApp sends straight to predict, matched by FastAPI's own two prediction routes; any
    other goes on to FastAPI."""
    app = gateway.server.rest.config.app

    def kept(method: str, path: str, query: bytes = b"") -> dict | None:
        return app._plain_prediction({"type": "http", "method": method, "path": path, "query_string": query,
                                      "headers": [], "root_path": ""})

    assert kept("POST", "/predict/resnet18") == {"model": "resnet18", "topk": None}
    assert kept("POST", "/predict/resnet18", b"topk=3") == {"model": "resnet18", "topk": 3}
    assert kept("POST", "/predict/resnet18/1.0") == {"model": "resnet18", "version": "1.0", "topk": None}
    for method, path, query in [("GET", "/predict/resnet18", b""), ("POST", "/predict/resnet18", b"topk=x"),
                                ("POST", "/predict/resnet18", b"topk=3&topk=4"), ("POST", "/predict/a/b/c", b""),
                                ("POST", "/predict/resnet18/1.0!", b""), ("POST", "/predict/resnet18/", b""),
                                ("POST", "/predict/resnet18", b"topk=-1"), ("POST", "/models", b"")]:
        assert kept(method, path, query) is None, (method, path, query)


@pytest.mark.parametrize("content_type", ["application/octet-stream", "image/png", None])
def test_predict_accepts_image_types_and_no_type(gateway, content_type):
    headers = {"Content-Type": content_type} if content_type else {}  # httpx sends none for raw bytes
    response = gateway.http.post("/predict/resnet18", content=photo("chelsea.png"), headers=headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 5


def test_predict_multipart_field(gateway):
    response = gateway.http.post("/predict/squeezenet1_0", params={"topk": 2},
                                 files={"image": ("cat.jpg", photo("chelsea.jpg"), "image/jpeg")})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "squeezenet1_0" and len(response.json()["predictions"]) == 2


def test_cifar_model_topk_up_to_its_classes(gateway):
    response = gateway.predict("fractalnet_cifar100", params={"topk": 100})
    assert response.status_code == 200, response.text
    assert response.json()["label_set"] == "cifar-100" and len(response.json()["predictions"]) == 100
    assert error(gateway.predict("fractalnet_cifar100", params={"topk": 101})) == (
        400, "bad_topk", "topk must be a whole number from 1 to 100, not '101'")


def test_predict_with_version(gateway):
    response = gateway.http.post("/predict/resnet18/1.0", content=photo("rocket.jpg"))
    assert response.status_code == 200 and response.json()["version"] == "1.0"
    assert error(gateway.http.post("/predict/resnet18/2.0", content=photo("rocket.jpg"))) == (
        404, "unknown_version", "model 'resnet18' has no version '2.0'")
    status, code, message = error(gateway.http.post("/predict/resnet18/1.0!", content=photo("rocket.jpg")))
    assert (status, code) == (422, "invalid_request")
    assert message == "invalid request: path.version: String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'"
    assert_serves(gateway)


def test_client_request_id_is_honoured_and_a_bad_one_replaced(gateway):
    response = gateway.predict("resnet18", headers={"X-Request-ID": "client-42.a:b", "Content-Type": "image/jpeg"})
    assert response.headers["x-request-id"] == "client-42.a:b" == response.json()["request_id"]
    response = gateway.predict("resnet18", headers={"X-Request-ID": "no spaces <here>", "Content-Type": "image/jpeg"})
    assert response.headers["x-request-id"] != "no spaces <here>"
    assert len(response.headers["x-request-id"]) == 32 == len(response.json()["request_id"])
    # errors carry it too
    response = gateway.predict("resnt18", headers={"X-Request-ID": "err-1"})
    assert response.status_code == 404 and response.headers["x-request-id"] == "err-1"


def test_unknown_model_names_close_matches(gateway):
    matches = difflib.get_close_matches("resnt18", list_models(), n=3, cutoff=0.5)
    response = gateway.predict("resnt18")
    assert error(response) == (404, "unknown_model", f"unknown model 'resnt18'; did you mean {', '.join(matches)}?")
    assert response.json()["error"]["close_matches"] == matches and matches[0] == "resnet18"
    assert error(gateway.predict("x" * 101)) == (
        404, "unknown_model", "unknown model: names are at most 100 characters")
    assert_serves(gateway)


def _truncated_tiff() -> bytes:
    """A TIFF whose header is fine and whose pixel data stops half way."""
    data = encode(Image.open(io.BytesIO(photo("chelsea.png"))).convert("RGB"), "TIFF")
    return data[: len(data) // 2]


def _decode_error(data: bytes) -> str:
    with pytest.raises(ImageError) as caught:
        decode(data)
    return caught.value.message


BAD_BODIES = {
    "not an image": (b"this is not an image", 415, "not_an_image",
                     "not an image: the body is not in any image format we read"),
    "unsupported format": (encode(Image.new("RGB", (8, 8)), "PPM"), 415, "unsupported_format",
                           "unsupported format: PPM (supported: BMP, GIF, JPEG, PNG, TIFF, WEBP)"),
    "empty body": (b"", 400, "empty_body", "empty body: send the image bytes"),
    "too many pixels": (encode(Image.new("L", (8000, 6000)), "PNG"), 413, "image_too_large",
                        "image too large: 8000x6000 > limit of 40000000 pixels"),
    "too small": (encode(Image.new("RGB", (1, 1)), "PNG"), 422, "image_too_small",
                  "image too small: 1x1 (each side needs 2+)"),
    "over the byte cap": (b"\xff" * (LIMIT + 1), 413, "body_too_large",
                          f"body too large: {LIMIT + 1} bytes > limit of {LIMIT} bytes"),
}


@pytest.mark.parametrize("case", BAD_BODIES)
def test_bad_body(gateway, case):
    body, status, code, message = BAD_BODIES[case]
    assert error(gateway.predict("resnet18", body)) == (status, code, message)
    assert_serves(gateway)


def test_corrupt_image_is_refused_by_the_handler(gateway):
    data = _truncated_tiff()  # its header passes the gateway's check: the handler finds the damage
    assert _decode_error(data) == "not an image: the TIFF data is corrupt or truncated"
    assert error(gateway.predict("resnet18", data)) == (415, "corrupt_image", _decode_error(data))
    assert_serves(gateway)


def test_chunked_body_over_the_cap(gateway):
    chunks = (b"\xff" * (1024 * 1024) for _ in range(LIMIT // (1024 * 1024) + 2))
    assert error(gateway.predict("resnet18", chunks)) == (
        413, "body_too_large", f"body too large: more than the limit of {LIMIT} bytes")
    assert_serves(gateway)


@pytest.mark.parametrize("request_kwargs, expected", [
    ({"content": b"x=1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
     (415, "unsupported_content_type", "unsupported content type 'application/x-www-form-urlencoded': send the "
      "image as the body (image/* or application/octet-stream) or as the multipart form field 'image'")),
    ({"files": {"picture": ("cat.jpg", photo("chelsea.jpg"), "image/jpeg")}},
     (400, "missing_image", "multipart form without a file field 'image'")),
    ({"data": {"image": "not a file"}, "files": {"other": ("a", b"b")}},
     (400, "missing_image", "multipart form without a file field 'image'")),
    ({"content": b"--x\r\n", "headers": {"Content-Type": "multipart/form-data"}},
     (400, "bad_multipart", "malformed multipart body: Missing boundary in multipart.")),
    ({"content": photo("chelsea.jpg"), "params": {"topk": "abc"}},
     (422, "invalid_request", "invalid request: query.topk: Input should be a valid integer, unable to parse "
      "string as an integer")),
    ({"content": photo("chelsea.jpg"), "params": {"topk": "0"}},
     (400, "bad_topk", "topk must be a whole number from 1 to 1000, not '0'")),
])
def test_malformed_request(gateway, request_kwargs, expected):
    assert error(gateway.http.post("/predict/resnet18", **request_kwargs)) == expected
    assert_serves(gateway)


def test_unknown_route_and_method(gateway):
    assert error(gateway.http.get("/nowhere")) == (404, "no_such_route", "not found: GET /nowhere")
    assert error(gateway.http.get("/predict/resnet18")) == (405, "method_not_allowed",
                                                            "method not allowed: GET /predict/resnet18")
    assert_serves(gateway)


def test_models_lists_the_catalog_with_loaded_flags(gateway, management):
    assert_serves(gateway)
    response = gateway.http.get("/models")
    assert response.status_code == 200
    models = {m["name"]: m for m in response.json()["models"]}
    assert sorted(models) == list_models()
    assert {name for name, m in models.items() if m["loaded"]} == management.registered()
    resnet = models["resnet18"]
    assert resnet["loaded"] is True and resnet["backend"] == "local"
    assert resnet["paper"]["title"] == "Deep Residual Learning for Image Recognition"
    assert resnet["num_classes"] == 1000 and resnet["input_size"] == [3, 224, 224]
    # which weights serve, as the archive's answers say: the test archives are fixed-seed; unknown until asked
    assert resnet["weights"] == "fixed-seed" and models["amoebanet_a_n6_f448"]["weights"] is None


def test_one_model(gateway):
    response = gateway.http.get("/models/fractalnet_cifar100")
    assert response.status_code == 200
    assert response.json()["label_set"] == "cifar-100" and response.json()["num_classes"] == 100
    assert error(gateway.http.get("/models/nosuchmodel"))[:2] == (404, "unknown_model")


def test_health_and_readiness(gateway):
    assert gateway.http.get("/healthz").json() == {"status": "ok"}
    response = gateway.http.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ready", "backends": {"local": True}}


def test_openapi_documents_every_route(gateway):
    spec = gateway.http.get("/openapi.json").json()
    assert {"/predict/{model}", "/predict/{model}/{version}", "/models", "/models/{model}", "/healthz", "/readyz",
            "/metrics"} <= set(spec["paths"])
    body = spec["paths"]["/predict/{model}"]["post"]["requestBody"]["content"]
    assert {"image/*", "application/octet-stream", "multipart/form-data"} <= set(body)
    assert "PredictResponse" in spec["components"]["schemas"] and "ErrorResponse" in spec["components"]["schemas"]
    docs = gateway.http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()

