"""Predictions and pings over TorchServe's gRPC inference API (``ZOO_BACKEND_PROTOCOL=grpc``; HTTP is the
default).

One HTTP/2 channel per backend multiplexes every request. Against httpx it was the faster transport; against
aiohttp it was slower and cost more CPU per call (loadtests/backend_transport.py, docs/gateway.md), so it
stays an option. TorchServe's gRPC API loses the handler's per-request status (it answers OK with the error
body), so the handler puts the status in the body too.
"""

from __future__ import annotations

from typing import Any

import grpc
import orjson
from google.protobuf.empty_pb2 import Empty

from zooserve._proto import torchserve_pb2, torchserve_pb2_grpc

from ..errors import BackendError, GatewayError
from ..settings import BackendSettings
from .calls import KeyRing, call
from .errors import KeyRefused, handler_error, key_refused, torchserve_error

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# gRPC's codes for a refused token, as the HTTP statuses of the same answer
HTTP_STATUS = {grpc.StatusCode.UNAUTHENTICATED: 401, grpc.StatusCode.PERMISSION_DENIED: 403}


class GrpcInference:
    def __init__(self, name: str, settings: BackendSettings, keys: KeyRing):
        self.name, self.keys = name, keys
        options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   # reconnect soon after TorchServe (re)starts: gRPC's default backoff grows to 2 minutes.
                   # Not grpc.min_reconnect_backoff_ms: gRPC core also takes it as the time a connection
                   # attempt may take (default 20 s), and at 100 ms a busy TorchServe failed the handshake
                   # ("timed out before receiving SETTINGS frame"), test_slow_grpc_handshake_is_waited_for
                   ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 2000)]
        self.channel = grpc.aio.insecure_channel(settings.grpc_address, options=options)
        self.stub = torchserve_pb2_grpc.InferenceAPIsServiceStub(self.channel)

    async def predict(self, model: str, version: str | None, image: bytes, topk: int | None,
                      timeout: float) -> dict[str, Any]:
        inputs = {"data": image} | ({"topk": str(topk).encode()} if topk is not None else {})
        request = torchserve_pb2.PredictionsRequest(model_name=model, model_version=version or "", input=inputs)
        reply = await call(self.name, self.keys,
                           lambda: self._send(self.stub.Predictions, request, timeout, model, version), timeout)
        try:
            body = orjson.loads(reply.prediction)
        except ValueError:
            raise BackendError(f"backend {self.name!r} answered something that is not JSON") from None
        error = handler_error(body)
        if error is not None:
            raise error
        return body

    async def ping(self, timeout: float) -> bool:
        try:
            await call(self.name, self.keys, lambda: self._send(self.stub.Ping, Empty(), timeout), timeout)
        except GatewayError:
            return False
        return True

    async def aclose(self) -> None:
        await self.channel.close()

    async def _send(self, method, request, timeout: float, model: str = "", version: str | None = None) -> Any:
        metadata = tuple((k.lower(), v) for k, v in self.keys.headers("inference").items())  # fresh on every try
        try:
            return await method(request, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            raise self._failure(model, version, error) from None

    def _failure(self, model: str, version: str | None, error: grpc.aio.AioRpcError) -> Exception:
        code, details = error.code(), error.details() or ""
        if key_refused(HTTP_STATUS.get(code, 500), details):
            return KeyRefused()
        # before the codes: TorchServe answers these with UNAVAILABLE, INTERNAL or RESOURCE_EXHAUSTED
        decoded = torchserve_error(self.name, model, version, details)
        if decoded is not None:
            return decoded
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return TimeoutError(details)
        if code == grpc.StatusCode.UNAVAILABLE:
            return ConnectionError(details)
        return BackendError(f"backend {self.name!r} failed on {model!r} ({code.name})")
