"""The gRPC transport: zooserve.v1.ZooService over the core (predictions through the experiments layer), the
Open Inference Protocol's service beside it (``v2/grpc_service.py``), grpc.health.v1 and server reflection.
What every method shares (the error mapping, request ids, access lines) is in ``rpc.py``.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from zooserve._proto import POOL
from zooserve._proto import zooserve_pb2 as pb
from zooserve._proto import zooserve_pb2_grpc as pb_grpc

from ..core import Gateway, PredictRequest, PredictResult
from ..experiments.layer import Experiments
from ..v2 import grpc_service as v2
from .rpc import Servicer, add_servicer, rpc

log = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ZooService"].full_name


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


class ZooService(Servicer, pb_grpc.ZooServiceServicer):
    @rpc
    async def Predict(self, request, context, rid: str):
        result = await self.experiments.predict(PredictRequest(
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
    """The gRPC server of one gateway. Health: the gateway ("") and ZooService serve from start to stop (its
    backends' state is /readyz's report, not a condition; a model whose backend is down answers UNAVAILABLE)."""

    def __init__(self, gateway: Gateway, experiments: Experiments):
        settings = gateway.settings
        # a little over the body cap, so that our own check answers first, with its message
        size = settings.max_body_bytes + 1024 * 1024
        self.server = grpc.aio.server(options=[("grpc.max_receive_message_length", size)],
                                      maximum_concurrent_rpcs=settings.max_concurrent_rpcs)
        add_servicer(ZooService(gateway, experiments), pb.DESCRIPTOR.services_by_name["ZooService"], self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        v2.add_to_server(self.server, gateway, experiments)  # the Open Inference Protocol (v2) beside ZooService
        reflection.enable_server_reflection(
            (SERVICE_NAME, v2.SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME),
            self.server,
            pool=reflected_pool(),
        )
        self.port = self.server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")

    async def start(self) -> None:
        for service in ("", SERVICE_NAME):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()

    async def stop(self, grace: float) -> None:
        """Refuses new calls at once; in-flight calls get ``grace`` seconds to finish."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
