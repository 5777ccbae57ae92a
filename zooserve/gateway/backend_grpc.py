"""Predictions over TorchServe's gRPC inference API (``ZOO_BACKEND_PROTOCOL=grpc``; HTTP is the default).

One HTTP/2 channel per backend multiplexes every request. Against httpx it was the faster transport; against
aiohttp (the HTTP client now) it is slower and costs more CPU per call (loadtests/backend_transport.py,
docs/gateway.md), so it stays an option. TorchServe's gRPC API loses the
handler's per-request status (it answers OK with the error body), so the status is found again from the
handler's error code here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import orjson
from google.protobuf.empty_pb2 import Empty

from zooserve._proto import torchserve_pb2, torchserve_pb2_grpc

from .backend import REFUSED_KEY, KeyRefused, ModelNotRegistered, worker_lost
from .errors import BackendError, BackendUnavailable, DeadlineExceeded, NotFound, from_status

if TYPE_CHECKING:
    from .backend import TorchServeBackend

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class GrpcInference:
    def __init__(self, backend: "TorchServeBackend"):
        self.backend = backend
        self.pb = torchserve_pb2
        services = torchserve_pb2_grpc
        options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   # reconnect soon after TorchServe (re)starts: gRPC's default backoff grows to 2 minutes.
                   # Not grpc.min_reconnect_backoff_ms: gRPC core also takes it as the time a connection
                   # attempt may take (default 20 s), and at 100 ms a busy TorchServe failed the handshake
                   # ("timed out before receiving SETTINGS frame"), test_slow_grpc_handshake_is_waited_for
                   ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 2000)]
        self.channel = grpc.aio.insecure_channel(backend.settings.grpc_address, options=options)
        self.stub = services.InferenceAPIsServiceStub(self.channel)

    async def aclose(self) -> None:
        await self.channel.close()

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return tuple((k.lower(), v) for k, v in self.backend.keys.headers("inference").items())

    async def predict(self, model: str, version: str | None, image: bytes, topk: int | None,
                      timeout: float) -> dict[str, Any]:
        inputs = {"data": image} | ({"topk": str(topk).encode()} if topk is not None else {})
        request = self.pb.PredictionsRequest(model_name=model, model_version=version or "", input=inputs)
        try:
            reply = await self.stub.Predictions(request, metadata=self._metadata(), timeout=timeout)
        except grpc.aio.AioRpcError as error:
            raise self._error(model, version, error) from None
        try:
            body = orjson.loads(reply.prediction)
        except ValueError:
            raise BackendError(f"backend {self.backend.name!r} answered something that is not JSON") from None
        if isinstance(body.get("error"), dict):
            # TorchServe's gRPC drops the status the handler set, so the handler also puts it in the body
            error = body["error"]
            raise from_status(int(error.get("status", 502)), error.get("code", ""), error.get("message", ""))
        return body

    async def ping(self, timeout: float) -> bool:
        try:
            await self.stub.Ping(Empty(), metadata=self._metadata(), timeout=timeout)
        except grpc.aio.AioRpcError as error:
            raise self._error("", None, error) from None
        return True

    def _error(self, model: str, version: str | None, error: grpc.aio.AioRpcError) -> Exception:
        code, details, name = error.code(), error.details() or "", self.backend.name
        if code == grpc.StatusCode.PERMISSION_DENIED or REFUSED_KEY in details:
            return KeyRefused()
        # before the codes: TorchServe answers these with UNAVAILABLE, INTERNAL or RESOURCE_EXHAUSTED
        lost = worker_lost(name, model, details)
        if lost is not None:
            return lost
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return DeadlineExceeded(f"no answer from backend {name!r} within the deadline")
        if code == grpc.StatusCode.UNAVAILABLE:
            return BackendUnavailable(f"backend {name!r} is unreachable")
        if "ModelVersionNotFoundException" in details:
            return NotFound(f"model {model!r} has no version {version!r}", code="unknown_version")
        if "ModelNotFoundException" in details:
            return ModelNotRegistered(model)
        return BackendError(f"backend {name!r} failed on {model!r} ({code.name})")
