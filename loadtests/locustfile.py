"""Locust users for the gateway: REST (FastHttpUser), gRPC and, where the gateway speaks it, the v2 protocol.

Every response is checked (status and shape), so a wrong answer counts as a failure, not a success.

    locust -f loadtests/locustfile.py RestUser --host http://127.0.0.1:8000 --headless -u 4 -r 4 -t 30s \
        --zoo-model resnet18

Name the user class for the protocol: RestUser, GrpcUser, V2User, TorchServeUser (straight to a
TorchServe, with ``--zoo-token`` its inference key), RestFormUser (the photograph as a multipart form) or
LitServeUser (the LitServe peer, loadtests/litserve_peer.py). Options (also from the environment as ZOO_MODEL,
ZOO_TOKEN, ZOO_GRPC_TARGET, ZOO_IMAGE): ``--zoo-model`` a model or experiment name; ``--zoo-grpc-target``
host:port of the gateway's gRPC server; ``--zoo-image`` the photograph to send (tests/data/chelsea.jpg).
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

from locust import FastHttpUser, User, events, task
from urllib3 import encode_multipart_formdata

try:  # the official locust image (docker-compose.yml) has no grpcio: there only the HTTP users can run
    import grpc
    import grpc.experimental.gevent as grpc_gevent
except ImportError:
    grpc = None
else:
    # locust users are gevent greenlets: without this, a blocking gRPC call stalls every user of the process
    grpc_gevent.init_gevent()

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = ROOT / "tests" / "data" / "chelsea.jpg"


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument("--zoo-model", default=os.environ.get("ZOO_MODEL", "resnet18"))
    parser.add_argument("--zoo-token", default=os.environ.get("ZOO_TOKEN", ""),
                        help="TorchServe inference key, for --zoo-protocol torchserve")
    parser.add_argument("--zoo-grpc-target", default=os.environ.get("ZOO_GRPC_TARGET", "127.0.0.1:50051"))
    parser.add_argument("--zoo-image", default=os.environ.get("ZOO_IMAGE", str(DEFAULT_IMAGE)))


def _check_predictions(predictions, model: str, answered_model: str) -> str | None:
    """Why an answer is wrong, or None: right model, top-k sorted, probabilities in (0, 1]."""
    if answered_model != model and not answered_model:
        return "no model in the answer"
    scores = [p["score"] if isinstance(p, dict) else p.score for p in predictions]
    if not scores:
        return "no predictions"
    if scores != sorted(scores, reverse=True) or not all(0 <= s <= 1 for s in scores):
        return f"scores not sorted probabilities: {scores}"
    return None


class _Zoo:
    """What every protocol's user shares: the options and the image, read once per user."""

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.model = options.zoo_model
        self.image = Path(options.zoo_image).read_bytes()


class RestUser(_Zoo, FastHttpUser):
    @task
    def predict(self) -> None:
        with self.client.post(f"/predict/{self.model}", data=self.image, name=f"/predict/{self.model}",
                              headers={"Content-Type": "application/octet-stream"}, catch_response=True) as response:
            _check_answer(response, self.model)


class V2User(_Zoo, FastHttpUser):
    """The Open Inference Protocol: the encoded image as a BYTES input (base64 in JSON)."""

    @task
    def infer(self) -> None:
        payload = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                               "data": [base64.b64encode(self.image).decode()]}]}
        with self.client.post(f"/v2/models/{self.model}/infer", json=payload, name=f"/v2/models/{self.model}/infer",
                              catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
            elif not response.json().get("outputs"):
                response.failure("no outputs")


class TorchServeUser(_Zoo, FastHttpUser):
    """Straight to a TorchServe inference API (stock or ours): the baseline the gateway is measured against."""

    @task
    def predict(self) -> None:
        headers = {"Content-Type": "application/octet-stream"}
        token = self.environment.parsed_options.zoo_token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        with self.client.post(f"/predictions/{self.model}", data=self.image, headers=headers,
                              name=f"/predictions/{self.model}", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
                return
            body = response.json()
            # ours answers {"predictions": [...]}, the stock handler {label: probability, ...}
            predictions = body.get("predictions") if isinstance(body, dict) and "predictions" in body else [
                {"score": score} for score in (body.values() if isinstance(body, dict) else [])
            ]
            problem = _check_predictions(predictions, self.model, self.model)
            if problem:
                response.failure(problem)


class GrpcUser(_Zoo, User):
    def on_start(self) -> None:
        super().on_start()
        if grpc is None:
            raise RuntimeError("GrpcUser needs grpcio and zooserve installed (pip install -e .)")
        from zooserve._proto import zooserve_pb2 as messages
        from zooserve._proto import zooserve_pb2_grpc as services

        self.messages = messages
        self.channel = grpc.insecure_channel(self.environment.parsed_options.zoo_grpc_target)
        self.stub = services.ZooServiceStub(self.channel)

    def on_stop(self) -> None:
        if hasattr(self, "channel"):
            self.channel.close()

    @task
    def predict(self) -> None:
        started = time.perf_counter()
        problem, length = None, 0
        try:
            reply = self.stub.Predict(self.messages.PredictRequest(model=self.model, image=self.image), timeout=120)
            length = reply.ByteSize()
            problem = _check_predictions(reply.predictions, self.model, reply.model)
        except grpc.RpcError as error:
            problem = f"{error.code().name}: {error.details()}"
        events.request.fire(
            request_type="grpc", name=f"Predict/{self.model}", response_time=1e3 * (time.perf_counter() - started),
            response_length=length, exception=Exception(problem) if problem else None, context={},
        )


def _form(image: bytes) -> tuple[bytes, str]:
    """The photograph as a multipart form's ``image`` field: the body and its Content-Type."""
    return encode_multipart_formdata({"image": ("photo.jpg", image, "image/jpeg")})


class _FormUser(_Zoo, FastHttpUser):
    """The photograph as a multipart form, encoded once per user."""

    abstract = True

    def on_start(self) -> None:
        super().on_start()
        self.body, self.content_type = _form(self.image)


class RestFormUser(_FormUser):
    """The gateway's REST API with the photograph as a multipart form, as the LitServe peer takes it."""

    @task
    def predict(self) -> None:
        with self.client.post(f"/predict/{self.model}", data=self.body, name=f"/predict/{self.model} (form)",
                              headers={"Content-Type": self.content_type}, catch_response=True) as response:
            _check_answer(response, self.model)


class LitServeUser(_FormUser):
    """The LitServe peer (loadtests/litserve_peer.py): the same form at its ``/predict``."""

    @task
    def predict(self) -> None:
        with self.client.post("/predict", data=self.body, name="/predict (LitServe)",
                              headers={"Content-Type": self.content_type}, catch_response=True) as response:
            _check_answer(response, self.model, names_the_model=False)


def _check_answer(response, model: str, names_the_model: bool = True) -> None:
    """Fails the request unless it answered 200 with sorted probabilities (and, from our stack, the model)."""
    if response.status_code != 200:
        response.failure(f"status {response.status_code}: {response.text[:200]}")
        return
    body = response.json()
    answered = body.get("model", "") if names_the_model else model  # LitServe's answer names no model
    problem = _check_predictions(body.get("predictions", []), model, answered)
    if problem:
        response.failure(problem)
