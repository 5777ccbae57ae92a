"""What every gRPC method of the gateway shares (ZooService and the Open Inference Protocol's service): the
one error mapping (the error table's ``grpc_code``), the request id, the access line, and requests whose
bytes do not decode answered INVALID_ARGUMENT rather than gRPC's own UNKNOWN.

The REST error code travels as trailing metadata ``zoo-error-code``, the request id as ``x-request-id``,
``retry-after`` where the error is retryable and ``x-variant`` where an experiment's variant answered or
failed (proto/zooserve/v1/zooserve.proto).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.protobuf.message_factory import GetMessageClass

from .. import logs
from ..core import Gateway, request_id
from ..errors import BadRequest, GatewayError
from ..experiments.layer import Experiments
from ..metrics import UNKNOWN_MODEL

log = logging.getLogger(__name__)


class Servicer:
    """The base of the gateway's servicers: the core, the experiments layer, and how a request names a model."""

    transport = "grpc"  # the access line's (and the metrics') name of the transport

    def __init__(self, gateway: Gateway, experiments: Experiments):
        self.gateway, self.experiments = gateway, experiments

    def model_label(self, request: Any) -> str | None:
        """The model a request names, as the access line may write it (a client's other text never is)."""
        name = next((getattr(request, f) for f in ("model", "model_name", "name") if getattr(request, f, "")), None)
        if name is None:
            return None
        return name if self.experiments.knows(name) else UNKNOWN_MODEL


async def abort(context: grpc.aio.ServicerContext, error: GatewayError, rid: str, retry_after_s: int) -> None:
    metadata = [("zoo-error-code", error.code), ("x-request-id", rid)]
    if error.retryable:
        metadata.append(("retry-after", str(error.retry_after_s or retry_after_s)))
    if error.variant is not None:
        metadata.append(("x-variant", error.variant))
    await context.abort(grpc.StatusCode[error.grpc_code], error.message, tuple(metadata))


def _client_request_id(request: Any, context: grpc.aio.ServicerContext) -> str:
    given = getattr(request, "request_id", "") or dict(context.invocation_metadata() or ()).get("x-request-id")
    return request_id(given)


class Undecodable:
    """A request whose bytes do not parse as its message (a string field that is not UTF-8, a truncated
    field). gRPC itself would answer UNKNOWN, a server error; ``rpc`` answers INVALID_ARGUMENT instead."""

    def __init__(self, message: str):
        self.message = message


def add_servicer(servicer: Any, service: Any, server: grpc.aio.Server) -> None:
    """Registers ``servicer``'s unary methods for ``service`` (a service descriptor) as the generated
    ``add_..._to_server`` would, except that a request that does not decode reaches the method as
    ``Undecodable``."""
    handlers = {}
    for method in service.methods:
        assert not (method.client_streaming or method.server_streaming), f"{method.full_name} is not unary"
        request, response = GetMessageClass(method.input_type), GetMessageClass(method.output_type)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name), request_deserializer=_tolerant(request),
            response_serializer=response.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)


def _tolerant(message: Any) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return message.FromString(data)
        except DecodeError:  # its text says no more than the type's name
            return Undecodable(message.DESCRIPTOR.full_name)

    return parse


def rpc(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The one error mapping: typed errors to their status, anything else to INTERNAL without details; and
    the request's access line."""

    @functools.wraps(method)
    async def handle(self: Servicer, request, context):
        started, rid = time.perf_counter(), _client_request_id(request, context)
        status, variant = "CANCELLED", None  # unless it ends otherwise: the client went away
        retry_after_s = self.gateway.settings.retry_after_s
        try:
            try:
                if isinstance(request, Undecodable):
                    raise BadRequest(f"malformed request: the bytes do not decode as a {request.message}",
                                     code="bad_request")
                reply = await method(self, request, context, rid)
            except GatewayError as error:
                status, variant = error.grpc_code, error.variant
                await abort(context, error, rid, retry_after_s)
            except Exception:
                status = "INTERNAL"
                log.exception("internal error in request %s", rid)
                await abort(context, GatewayError(f"internal error (request id {rid})"), rid, retry_after_s)
            status, variant = "OK", getattr(reply, "variant", "") or None  # a prediction on an experiment
            trailing = [("x-request-id", rid)] + ([("x-variant", variant)] if variant else [])
            context.set_trailing_metadata(tuple(trailing))
            return reply
        finally:
            logs.access(self.transport, rid, status, started, self.model_label(request), variant)

    return handle
