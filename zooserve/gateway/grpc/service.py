"""The gRPC transport: zooserve.v1.ZooService over the core, grpc.health.v1 and server reflection.

Errors map once, by type, to status codes; the REST error code travels as trailing metadata
``zoo-error-code`` and the request id as ``x-request-id`` (proto/zooserve/v1/zooserve.proto).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from zooserve._proto import POOL
from zooserve._proto import zooserve_pb2 as pb
from zooserve._proto import zooserve_pb2_grpc as pb_grpc

from ..core import Gateway, PredictRequest, PredictResult, request_id
from ..errors import (
    BackendUnavailable,
    BadRequest,
    DeadlineExceeded,
    GatewayError,
    NotFound,
    Overloaded,
    TooLarge,
    Unprocessable,
    UnsupportedMedia,
)

log = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ZooService"].full_name
HEALTH_INTERVAL_S = 5.0

STATUS: dict[type[GatewayError], grpc.StatusCode] = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    BadRequest: grpc.StatusCode.INVALID_ARGUMENT,
    Unprocessable: grpc.StatusCode.INVALID_ARGUMENT,
    UnsupportedMedia: grpc.StatusCode.INVALID_ARGUMENT,
    TooLarge: grpc.StatusCode.INVALID_ARGUMENT,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    BackendUnavailable: grpc.StatusCode.UNAVAILABLE,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
}


async def abort(context: grpc.aio.ServicerContext, error: GatewayError, rid: str) -> None:
    metadata = [("zoo-error-code", error.code), ("x-request-id", rid)]
    if isinstance(error, Overloaded):
        metadata.append(("retry-after", str(error.retry_after_s)))
    await context.abort(STATUS.get(type(error), grpc.StatusCode.INTERNAL), error.message, tuple(metadata))


def _client_request_id(request: Any, context: grpc.aio.ServicerContext) -> str:
    given = getattr(request, "request_id", "") or dict(context.invocation_metadata() or ()).get("x-request-id")
    return request_id(given)


class Undecodable:
    """A request whose bytes do not parse as its message (a string field that is not UTF-8, a truncated
    field). gRPC itself would answer UNKNOWN, a server error; ``rpc`` answers INVALID_ARGUMENT instead."""

    def __init__(self, message: str):
        self.message = message


@functools.cache
def reflected_pool() -> Any:
    """Our messages' pool (zooserve._proto.POOL) with the health and reflection services added, so that
    reflection describes every service it lists."""
    from grpc_reflection.v1alpha import reflection_pb2

    for module in (health_pb2, reflection_pb2):
        try:
            POOL.FindFileByName(module.DESCRIPTOR.name)
        except KeyError:
            POOL.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    return POOL


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
    """The one error mapping: typed errors to their status, anything else to INTERNAL without details."""

    @functools.wraps(method)
    async def handle(self, request, context):
        rid = _client_request_id(request, context)
        try:
            if isinstance(request, Undecodable):
                raise BadRequest(f"malformed request: the bytes do not decode as a {request.message}",
                                 code="bad_request")
            reply = await method(self, request, context, rid)
        except GatewayError as error:
            await abort(context, error, rid)
        except Exception:
            log.exception("internal error in request %s", rid)
            await abort(context, GatewayError(f"internal error (request id {rid})"), rid)
        trailing = [("x-request-id", rid)]
        if getattr(reply, "variant", ""):  # a prediction on an experiment: which variant answered
            trailing.append(("x-variant", reply.variant))
        context.set_trailing_metadata(tuple(trailing))
        return reply

    return handle


class ZooService(pb_grpc.ZooServiceServicer):
    def __init__(self, gateway: Gateway):
        self.gateway = gateway

    @rpc
    async def Predict(self, request, context, rid: str):
        result = await self.gateway.predict(PredictRequest(
            model=request.model, image=request.image, route="grpc", version=request.version or None,
            topk=request.topk if request.HasField("topk") else None, request_id=rid,
            timeout_s=context.time_remaining(),  # the client's deadline, None without one
            headers={k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)},
        ))
        return _prediction(result)

    @rpc
    async def ListModels(self, request, context, rid: str):
        return pb.ListModelsResponse(models=[_model(entry) for entry in await self.gateway.list_models()])

    @rpc
    async def GetModel(self, request, context, rid: str):
        return _model(await self.gateway.get_model(request.model))


def _prediction(result: PredictResult) -> Any:
    return pb.PredictResponse(
        request_id=result.request_id, model=result.model, version=result.version, weights=result.weights,
        pretrained=result.pretrained, label_set=result.label_set,
        predictions=[pb.Prediction(index=p.index, label=p.label, score=p.score) for p in result.predictions],
        timings=pb.Timings(**vars(result.timings)),
        experiment=result.experiment or "", variant=result.variant or "", runtime=result.runtime,
    )


def _model(entry: dict[str, Any]) -> Any:
    paper = {k: v or "" for k, v in entry["paper"].items()}
    optional = {k: entry[k] for k in ("seed_top1", "seed_top5", "paper_params", "paper_macs") if entry[k] is not None}
    return pb.Model(
        name=entry["name"], family=entry["family"], seed_name=entry["seed_name"] or "", paper=pb.Paper(**paper),
        variant=entry["variant"], source=entry["source"], fidelity=entry["fidelity"], label_set=entry["label_set"],
        num_classes=entry["num_classes"], input_size=entry["input_size"], heavy=entry["heavy"],
        pretrained_available=entry["pretrained"] is not None, loaded=entry["loaded"], backend=entry["backend"],
        **optional,
    )


class GrpcServer:
    """The gRPC server of one gateway, with health kept current from the backends' readiness."""

    def __init__(self, gateway: Gateway):
        settings = gateway.settings
        self.gateway = gateway
        # a little over the body cap, so that our own check answers first, with its message
        size = settings.max_body_bytes + 1024 * 1024
        self.server = grpc.aio.server(options=[("grpc.max_receive_message_length", size)],
                                      maximum_concurrent_rpcs=settings.max_concurrent_rpcs)
        add_servicer(ZooService(gateway), pb.DESCRIPTOR.services_by_name["ZooService"], self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        # the Open Inference Protocol (v2) beside ZooService; imported here: it builds on this module's `rpc`
        from ..v2 import grpc_service as v2

        v2.add_to_server(self.server, gateway)
        reflection.enable_server_reflection(
            (SERVICE_NAME, v2.SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME),
            self.server,
            pool=reflected_pool(),
        )
        self.port = self.server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
        self._watch: asyncio.Task | None = None

    async def start(self) -> None:
        await self.refresh_health()
        await self.server.start()
        self._watch = asyncio.create_task(self._keep_health())

    async def refresh_health(self) -> None:
        """The gateway itself serves (""); ZooService serves when every backend answers."""
        ready = all((await self.gateway.ready()).values())
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        await self.health.set(SERVICE_NAME, status)

    async def _keep_health(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            try:
                await self.refresh_health()
            except Exception:  # a health probe must never end the loop
                log.exception("health refresh failed")

    async def stop(self, grace: float) -> None:
        """Refuses new calls at once; in-flight calls get ``grace`` seconds to finish."""
        if self._watch is not None:
            self._watch.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
