"""The gateway's readiness is its own: with two TorchServe backends and one of them stopped, the gateway stays
ready on every transport (REST /readyz, v2 REST and gRPC, gRPC health), reports the stopped backend, and only
the models routed to it answer 503 with Retry-After."""

from __future__ import annotations

import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import photo, torchserve_ports
from tests.gateway.conftest import backend_for, running_gateway
from tests.gateway.test_grpc import rpc_error
from tests.gateway.test_rest import error
from zooserve._proto import open_inference_pb2 as v2_pb
from zooserve._proto import open_inference_pb2_grpc as v2_grpc
from zooserve._proto import zooserve_pb2 as pb
from zooserve.gateway.settings import Settings
from zooserve.torchserve import TorchServe

ELSEWHERE = "squeezenet1_0"  # routed to the second backend


def test_a_stopped_backend_fails_only_its_own_models(loop_thread, torchserve, model_store, tmp_path):
    second = TorchServe(tmp_path / "second", model_store, torchserve_ports()).start()
    try:
        config = Settings(host="127.0.0.1", rest_port=0, grpc_port=0, request_timeout_s=300,
                          backends={"local": backend_for(torchserve), "second": backend_for(second)},
                          routes={ELSEWHERE: "second"})
        with running_gateway(loop_thread, config) as gateway:
            served = gateway.predict(ELSEWHERE)
            assert served.status_code == 200, served.text  # by the second backend, while it runs
            assert gateway.http.get("/readyz").json() == {"status": "ready", "backends": {"local": True,
                                                                                         "second": True}}
            second.stop()
            _wait_until_reported_down(gateway, "second")

            refused = gateway.predict(ELSEWHERE)
            assert error(refused) == (503, "backend_unavailable", "backend 'second' is unreachable")
            assert refused.headers["retry-after"] == str(config.retry_after_s)
            assert gateway.predict("resnet18").status_code == 200  # the other backend's models are served
            status, _, metadata = rpc_error(gateway.stub.Predict, pb.PredictRequest(model=ELSEWHERE,
                                                                                     image=photo("chelsea.jpg")))
            assert (status, metadata["zoo-error-code"], metadata["retry-after"]) == (
                grpc.StatusCode.UNAVAILABLE, "backend_unavailable", str(config.retry_after_s))

            # ready all the same, on every transport; only the stopped backend's models are not
            assert gateway.http.get("/v2/health/ready").status_code == 200
            assert gateway.http.get(f"/v2/models/{ELSEWHERE}/ready").status_code == 400
            assert gateway.http.get("/v2/models/resnet18/ready").status_code == 200
            health = health_pb2_grpc.HealthStub(gateway.channel)
            for service in ("", "zooserve.v1.ZooService"):
                assert health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status == \
                    health_pb2.HealthCheckResponse.SERVING
            inference = v2_grpc.GRPCInferenceServiceStub(gateway.channel)
            assert inference.ServerReady(v2_pb.ServerReadyRequest(), timeout=10).ready
            assert not inference.ModelReady(v2_pb.ModelReadyRequest(name=ELSEWHERE), timeout=10).ready
    finally:
        second.stop()


def _wait_until_reported_down(gateway, backend: str, timeout: float = 30) -> None:
    """The backends are pinged every few seconds; /readyz stays 200 throughout."""
    deadline = time.monotonic() + timeout
    while True:
        ready = gateway.http.get("/readyz")
        assert ready.status_code == 200, ready.text
        if ready.json()["backends"][backend] is False:
            return
        assert time.monotonic() < deadline, ready.text
        time.sleep(0.2)
