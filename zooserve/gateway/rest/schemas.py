"""The REST API's request and response bodies (they are also its OpenAPI schema, at /docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from zooserve.zoo.meta import Fidelity, Figure, LabelSet, Paper, Preprocess, Pretrained, Source

from ..core import PredictResult


class Prediction(BaseModel):
    index: int = Field(description="class index in the model's label set")
    label: str
    score: float = Field(description="softmax probability")


class Timings(BaseModel):
    total_ms: float = Field(description="from the gateway receiving the request to it answering")
    backend_ms: float = Field(description="inside the TorchServe call(s)")
    load_ms: float = Field(description="loading the model on first use (0 when it was loaded)")


class PredictResponse(BaseModel):
    request_id: str = Field(description="also in the X-Request-ID header; the client's own when it sent one")
    model: str
    version: str
    weights: str = Field(description="where the weights come from: fixed-seed, file or pretrained")
    pretrained: bool = Field(description="whether the weights are a library's published ones")
    label_set: LabelSet
    predictions: list[Prediction] = Field(description="top-k classes, best first")
    timings: Timings
    runtime: str = Field(description="what ran the model: eager, compile, onnxruntime or openvino")
    experiment: str | None = Field(default=None, description="the experiment the request named, if any")
    variant: str | None = Field(default=None, description="the experiment's variant that answered (also X-Variant)")


def result_body(result: PredictResult) -> dict[str, Any]:
    """The result as plain data (the REST body): dataclasses.asdict's deep copy, without its cost."""
    return {
        "request_id": result.request_id, "model": result.model, "version": result.version,
        "weights": result.weights, "pretrained": result.pretrained, "label_set": result.label_set,
        "predictions": [{"index": p.index, "label": p.label, "score": p.score} for p in result.predictions],
        "timings": {"total_ms": result.timings.total_ms, "backend_ms": result.timings.backend_ms,
                    "load_ms": result.timings.load_ms},
        "runtime": result.runtime, "experiment": result.experiment, "variant": result.variant,
    }


class ModelEntry(BaseModel):
    """One architecture of the catalog: the registry's metadata, and where it is served."""

    name: str
    family: str
    seed_name: str | None = Field(description="the seed table's name for this network; null for extra variants")
    paper: Paper
    variant: str
    seed_result: str | None
    source: Source
    library_id: str | None
    fidelity: Fidelity
    fidelity_note: str | None
    label_set: LabelSet
    preprocess: Preprocess
    paper_params: Figure | None
    paper_macs: Figure | None
    params_note: str | None
    params_tolerance: float
    pretrained: Pretrained | None = Field(description="published weights a library has (the served archive may "
                                          "still carry the fixed seed: see a prediction's `weights`)")
    heavy: bool = Field(description="too large to keep resident beside others on a small machine")
    num_classes: int
    input_size: list[int]
    seed_top1: float | None
    seed_top5: float | None
    seed_published_in: str | None
    loaded: bool = Field(description="registered on its TorchServe backend now (else loaded on first request)")
    backend: str = Field(description="the backend the routing table sends it to")
    weights: str | None = Field(default=None, description="what its archive serves, as its last answer said: "
                                "fixed-seed, file or pretrained; null before its first answer")


class ModelList(BaseModel):
    models: list[ModelEntry]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    backends: dict[str, bool] = Field(description="whether each TorchServe backend answers its /ping")


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable: unknown_model, not_an_image, overloaded, ...")
    message: str
    close_matches: list[str] | None = Field(default=None, description="for unknown_model: the nearest names")


class ErrorResponse(BaseModel):
    error: ErrorDetail
