"""The Open Inference Protocol's gRPC binding: ``inference.GRPCInferenceService`` on the gateway's gRPC port
(proto/inference/grpc_service.proto). Errors map to status codes through the gRPC transport's one mapping
(``grpc/rpc.py``: ``rpc``), with the same messages.

The image is the one BYTES element of input ``image``: in ``raw_input_contents`` (a 4-byte little-endian
length, then the bytes, as tritonclient sends it) or in ``contents.bytes_contents``. Outputs are answered
in ``raw_output_contents``, as Triton does.
"""

from __future__ import annotations

from typing import Any

from zooserve._proto import open_inference_pb2 as pb
from zooserve._proto import open_inference_pb2_grpc as pb_grpc

from ..core import Gateway
from ..errors import BadRequest
from ..experiments.layer import Experiments
from ..grpc.rpc import Servicer, add_servicer, rpc
from . import protocol as v2

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
ROUTE = "v2_grpc"  # the route label of zoo_requests_total


class InferenceService(Servicer, pb_grpc.GRPCInferenceServiceServicer):
    transport = ROUTE

    @rpc
    async def ServerLive(self, request, context, rid: str):
        return pb.ServerLiveResponse(live=True)

    @rpc
    async def ServerReady(self, request, context, rid: str):
        return pb.ServerReadyResponse(ready=v2.server_ready(self.gateway))

    @rpc
    async def ModelReady(self, request, context, rid: str):
        return pb.ModelReadyResponse(
            ready=await v2.model_ready(self.gateway, request.name, v2.version_of(request.version)))

    @rpc
    async def ServerMetadata(self, request, context, rid: str):
        return pb.ServerMetadataResponse(name=v2.SERVER_NAME, version=v2.SERVER_VERSION,
                                         extensions=list(v2.EXTENSIONS))

    @rpc
    async def ModelMetadata(self, request, context, rid: str):
        meta = v2.model_metadata(self.gateway, request.name, v2.version_of(request.version))
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[tensor(**t) for t in meta["inputs"]], outputs=[tensor(**t) for t in meta["outputs"]],
        )

    @rpc
    async def ModelInfer(self, request, context, rid: str):
        v2.check_single_input(len(request.inputs))
        tensor = request.inputs[0]
        if request.raw_input_contents:
            if len(request.raw_input_contents) != len(request.inputs):
                raise BadRequest("raw_input_contents must hold one entry per input", code="bad_tensor")
            images = v2.decode_bytes(request.raw_input_contents[0])
        else:
            images = list(tensor.contents.bytes_contents)
        v2.check_input(tensor.name, tensor.datatype, tensor.shape, len(images))
        v2.check_parameters(tensor.parameters, v2.GRPC_PARAMETERS["input"], f"input {tensor.name[:80]!r}")
        parameters = {key: _value(param) for key, param in request.parameters.items()}
        v2.check_parameters(parameters, v2.GRPC_PARAMETERS["request"])
        names = v2.requested_outputs(output.name for output in request.outputs)
        for output in request.outputs:
            v2.check_parameters(output.parameters, v2.GRPC_PARAMETERS["output"], f"output {output.name[:80]!r}")
        results = await v2.infer(
            self.experiments, request.model_name, v2.version_of(request.model_version), images, route=ROUTE,
            topk=v2.topk_parameter(parameters), request_id=rid,
            timeout_s=min(filter(None, (context.time_remaining(), v2.timeout_parameter(parameters))), default=None),
        )
        tensors = v2.output_tensors(results, names)
        return pb.ModelInferResponse(
            model_name=results[0].model, model_version=results[0].version, id=request.id,
            outputs=[pb.ModelInferResponse.InferOutputTensor(name=t.name, datatype=t.datatype, shape=t.shape)
                     for t in tensors],
            raw_output_contents=[t.raw() for t in tensors],
        )


def _value(param: Any) -> Any:
    kind = param.WhichOneof("parameter_choice")
    return getattr(param, kind) if kind else None


def add_to_server(server: Any, gateway: Gateway, experiments: Experiments) -> None:
    add_servicer(InferenceService(gateway, experiments), pb.DESCRIPTOR.services_by_name["GRPCInferenceService"],
                 server)
