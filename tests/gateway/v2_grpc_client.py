"""tritonclient.grpc against a gateway: ``observe(target, image)`` returns what the client saw, as JSON-ready data.

It runs in the tests' own process, beside the gateway: tritonclient registers its generated ``inference.*``
messages in protobuf's default pool, and the gateway's (zooserve._proto) live in a pool of their own.
"""

from __future__ import annotations

import numpy as np
import tritonclient.grpc as grpcclient
from google.protobuf import json_format
from tritonclient.utils import InferenceServerException


def image_input(data: bytes) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=np.object_))
    return tensor


def attempt(call) -> dict:
    try:
        return {"ok": call()}
    except InferenceServerException as error:
        return {"status": error.status(), "message": error.message()}


def observe(target: str, image: bytes) -> dict:
    client = grpcclient.InferenceServerClient(target)
    outputs = [grpcclient.InferRequestedOutput(name) for name in ("probabilities", "labels", "indices")]

    def infer(model: str, data: bytes, **kwargs) -> dict:
        result = client.infer(model, [image_input(data)], outputs=outputs, client_timeout=300, **kwargs)
        response = result.get_response()
        return {
            "model_name": response.model_name, "model_version": response.model_version, "id": response.id,
            "probabilities": result.as_numpy("probabilities").tolist(),
            "labels": [[b.decode() for b in row] for row in result.as_numpy("labels")],
            "indices": result.as_numpy("indices").tolist(),
            "dtypes": [str(result.as_numpy(n).dtype) for n in ("probabilities", "labels", "indices")],
        }

    seen = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready("resnet18"),
        "server_metadata": json_format.MessageToDict(client.get_server_metadata()),
        "metadata": json_format.MessageToDict(client.get_model_metadata("resnet18"),
                                              preserving_proto_field_name=True),
        "infer": attempt(lambda: infer("resnet18", image, request_id="grpc-1", parameters={"topk": 3})),
        "infer_default": attempt(lambda: infer("resnet18", image)),
        "unknown_model": attempt(lambda: infer("resnt18", image)),
        "unknown_model_ready": attempt(lambda: client.is_model_ready("resnt18")),
        "not_an_image": attempt(lambda: infer("resnet18", b"this is not an image")),
        "unknown_output": attempt(lambda: client.infer(
            "resnet18", [image_input(image)], outputs=[grpcclient.InferRequestedOutput("logits")])),
    }
    client.close()
    return seen
