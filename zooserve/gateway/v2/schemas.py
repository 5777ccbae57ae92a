"""The Open Inference Protocol's REST bodies as the OpenAPI document (/docs, /openapi.json) describes them.

The binding parses requests by hand (rest.py: JSON with binary data after it is not something a pydantic
model can read); these models only describe the bodies, so that clients and tools that read the document
(Swagger UI, schemathesis) can send real requests and check the answers.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from pydantic import BaseModel, Field

from . import protocol as v2


class V2Error(BaseModel):
    error: str = Field(description="what was wrong, for people (the protocol's error body)")


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 for a dimension of any size")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class InputTensor(BaseModel):
    name: str = Field(description=f"the model's one input: {v2.INPUT!r}")
    datatype: str = Field(description="BYTES")
    shape: list[int] = Field(description="[N] (or [N, 1]) for N images, 1 to 32")
    data: list[Any] | None = Field(default=None, description="the images as base64 strings (JSON cannot carry "
                                   "bytes); absent when they follow the JSON as binary data")
    parameters: dict[str, Any] | None = Field(default=None, description="binary_data_size: the bytes of this "
                                              "input after the JSON (binary tensor data extension)")


class RequestedOutput(BaseModel):
    name: str = Field(description=", ".join(v2.OUTPUTS))
    parameters: dict[str, Any] | None = Field(default=None, description="binary_data: answer it as binary data")


class InferenceRequest(BaseModel):
    id: str | None = Field(default=None, description="echoed in the answer")
    parameters: dict[str, Any] | None = Field(default=None, description="topk (classes per image, default 5), "
                                              "timeout (microseconds), binary_data_output")
    inputs: list[InputTensor]
    outputs: list[RequestedOutput] | None = Field(default=None, description="all three when absent")


class OutputTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[OutputTensor]


def _example_image() -> str:
    """A small real PNG (a grey gradient) as base64: the document's example request classifies it."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((32, 32)).convert("RGB").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": V2Error} for status in statuses}


INFER_ERRORS = errors(400, 404, 413, 415, 422, 429, 502, 503, 504)
INFER_BODY = {
    "required": True,
    "description": "JSON, with the images as base64; or (the binary tensor data extension, what tritonclient "
                   "sends) the JSON followed by the images as binary data, its length in the header "
                   "Inference-Header-Content-Length, each image a 4-byte little-endian length and its bytes",
    "content": {
        "application/json": {"schema": _schema(InferenceRequest), "example": {
            "id": "example", "parameters": {"topk": 3},
            "inputs": [{"name": v2.INPUT, "datatype": "BYTES", "shape": [1], "data": [_example_image()]}],
        }},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}
HEADER_LENGTH_PARAMETER = {
    "name": "Inference-Header-Content-Length", "in": "header", "required": False,
    "description": "with binary data after the JSON: the JSON's length in bytes",
    "schema": {"type": "integer", "minimum": 0},
}
INFER_RESPONSES = {200: {"model": InferenceResponse, "description": "JSON; or the JSON followed by binary data "
                         "(Inference-Header-Content-Length) when outputs were asked for in binary",
                         "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                   **INFER_ERRORS}
