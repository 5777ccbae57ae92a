"""The classifier behind the TorchServe handler: one zoo model, its preprocessing, batched top-k.

Kept free of TorchServe types so it can be used and tested on its own; ``zoo_handler.py`` adapts it to
TorchServe's handler life cycle.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zooserve.zoo import create_model, model_info
from zooserve.zoo.labels import class_names

from .decode import DEFAULT_MAX_PIXELS, ImageError, decode
from .preprocess import Preprocessor
from .runtimes import ModelSource, RuntimeName, RuntimeOptions, load_runtime, runtime_class

log = logging.getLogger(__name__)


class HandlerConfig(BaseModel):
    """The ``zoo:`` section of an archive's model-config.yaml."""

    model_config = ConfigDict(extra="forbid")

    model: str
    version: str = "1.0"
    seed: int = 0
    weights: Literal["fixed-seed", "file", "pretrained"] = Field(
        default="fixed-seed", description="where the weights come from: the seed, a given file, a library"
    )
    weights_file: str | None = Field(default=None, description="safetensors file inside the archive")
    half: bool = Field(default=True, description="float16 on CUDA (CPU always runs float32)")
    channels_last: bool = True
    gpu_decode: bool = Field(default=True, description="JPEG decoded on the GPU by nvJPEG on CUDA workers")
    topk: int = Field(default=5, ge=1)
    max_pixels: int = Field(default=DEFAULT_MAX_PIXELS, gt=0)
    threads: int = Field(default=0, ge=0, description="torch threads on CPU; 0: the cores this worker may use")
    warmup: bool = True
    runtime: RuntimeName = Field(default="eager", description="what runs the model (handler/runtimes/)")
    selection: dict[str, Any] | None = Field(
        default=None, description="why this runtime: the build's measurement of each runtime (zooserve/store/select.py)"
    )

    @field_validator("weights_file")
    @classmethod
    def _safetensors_in_the_archive(cls, name: str | None) -> str | None:
        # an archive's weights are data, never code: safetensors only (unpickling a .pt could run anything,
        # and weights_only=True is the only guard there), and a bare file name, so it cannot point outside
        # the archive. zooserve.store always writes weights.safetensors.
        if name is not None and (Path(name).name != name or not name.endswith(".safetensors")):
            raise ValueError(f"weights_file must be a .safetensors file at the archive's top level, not {name!r}")
        return name

    @model_validator(mode="after")
    def _file_for_real_weights(self) -> "HandlerConfig":
        if (self.weights == "fixed-seed") != (self.weights_file is None):
            raise ValueError("weights_file goes with weights 'file' or 'pretrained', and only with them")
        return self


@dataclass
class Outcome:
    """What one request in a batch gets: a body and the HTTP-style status to answer with."""

    status: int
    body: dict[str, Any]


def choose_device(gpu_id: int | str | None) -> torch.device:
    if gpu_id is not None and str(gpu_id) != "" and torch.cuda.is_available():
        return torch.device(f"cuda:{int(gpu_id)}")
    return torch.device("cpu")


def cpu_threads(requested: int, workers: int) -> int:
    """Threads per worker so that workers x threads never exceeds the cores (oversubscription ruins CPU)."""
    if requested:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


class ClassifierService:
    def __init__(self, config: HandlerConfig, model_dir: str | Path, device: torch.device, workers: int = 1,
                 batch_size: int = 1):
        self.config = config
        self.device = device
        self.model_dir = Path(model_dir)
        self.info = model_info(config.model)
        self.labels = class_names(self.info.label_set)
        self.preprocessor = Preprocessor(self.info.preprocess)
        options = RuntimeOptions(device=device, threads=cpu_threads(config.threads, workers), half=config.half,
                                 channels_last=config.channels_last)
        if device.type == "cpu":  # preprocessing runs in torch whatever the runtime
            torch.set_num_threads(options.threads)
        started = time.perf_counter()
        self.runtime = load_runtime(self._runtime_for(device), ModelSource(self.model_dir, self._build_model), options)
        self.dtype = self.runtime.input_dtype
        if config.warmup:
            # the first calls pay for kernel selection, allocator growth (and compilation, for `compile`):
            # pay at load, not on a user
            self.runtime.warm_up(torch.zeros(batch_size, *self.info.preprocess.input_size, device=device,
                                             dtype=self.dtype))
        self.load_seconds = time.perf_counter() - started

    def _runtime_for(self, device: torch.device) -> str:
        if runtime_class(self.config.runtime).supports(device):
            return self.config.runtime
        # the archive's choice was measured for another device (an OpenVINO IR on a CUDA worker)
        log.warning("%s: runtime %s does not run on %s; serving with eager", self.config.model, self.config.runtime,
                    device)
        return "eager"

    def _build_model(self) -> torch.nn.Module:
        """The zoo model, for the runtimes that run it in PyTorch (the others load the archive's artefact)."""
        weights = self.model_dir / self.config.weights_file if self.config.weights_file else None
        return create_model(self.config.model, weights=weights, seed=self.config.seed)

    # --- the request path: decode_request -> predict -> encode_response, over a whole batch ---

    def decode_request(self, payload: Any, topk: Any) -> tuple[torch.Tensor, int]:
        """One request's image, resized and cropped (uint8), and its top-k; ImageError if unusable."""
        if isinstance(payload, str):
            payload = payload.encode("latin-1")
        if not isinstance(payload, (bytes, bytearray)):
            raise ImageError(415, "not_an_image", "not an image: send the image file's bytes as the body")
        device = self.device if self.config.gpu_decode else None
        image = decode(bytes(payload), self.config.max_pixels, device)
        return self.preprocessor.resize_and_crop(image), self._topk(topk)

    def _topk(self, raw: Any) -> int:
        if raw is None or raw == b"" or raw == "":
            return min(self.config.topk, len(self.labels))
        text = raw.decode() if isinstance(raw, (bytes, bytearray)) else str(raw)
        if not text.strip().isdigit() or not 1 <= int(text) <= len(self.labels):
            raise ImageError(400, "bad_topk", f"topk must be a whole number from 1 to {len(self.labels)}, not {text!r}")
        return int(text)

    def predict(self, images: list[torch.Tensor]) -> torch.Tensor:
        """Class probabilities (N, classes) in float32 on the CPU."""
        batch = self.preprocessor.normalize(self._on_device(images), self.dtype)
        return self.runtime(batch).float().softmax(dim=-1).cpu()

    def _on_device(self, images: list[torch.Tensor]) -> torch.Tensor:
        """The uint8 batch on the model's device: CPU-decoded images through pinned memory (an asynchronous
        copy), nvJPEG-decoded ones already there."""
        if self.device.type != "cuda":
            return torch.stack(images)
        if not any(image.is_cuda for image in images):
            return torch.stack(images).pin_memory().to(self.device, non_blocking=True)
        return torch.stack([image.to(self.device, non_blocking=True) for image in images])

    def encode_response(self, probabilities: torch.Tensor, topk: int) -> dict[str, Any]:
        scores, indices = probabilities.topk(topk)
        return {
            "model": self.config.model,
            "version": self.config.version,
            "weights": self.config.weights,
            "pretrained": self.config.weights == "pretrained",
            "label_set": self.info.label_set,
            "runtime": self.runtime.name,
            "predictions": [
                {"index": int(i), "label": self.labels[int(i)], "score": round(float(s), 6)}
                for s, i in zip(scores, indices)
            ],
        }

    def classify(self, requests: list[tuple[Any, Any]]) -> list[Outcome]:
        """(payload, topk) per request; each gets its own answer, and a bad one never fails the others."""
        outcomes: list[Outcome | None] = [None] * len(requests)
        images, topks, positions = [], [], []
        for position, (payload, topk) in enumerate(requests):
            try:
                image, k = self.decode_request(payload, topk)
            except ImageError as error:
                body = {"error": {"code": error.code, "message": error.message, "status": error.status}}
                outcomes[position] = Outcome(error.status, body)
                continue
            images.append(image)
            topks.append(k)
            positions.append(position)
        if images:
            probabilities = self.predict(images)
            for row, position in enumerate(positions):
                outcomes[position] = Outcome(200, self.encode_response(probabilities[row], topks[row]))
        return outcomes
