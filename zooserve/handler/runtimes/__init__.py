"""The runtimes a zoo model can run on, one module each, behind one interface.

A runtime turns a normalized float batch (N, 3, h, w) into logits (N, classes). Decoding, preprocessing
and top-k stay in the handler (``service.py``), the same for every runtime. A runtime that needs an
exported artefact (an ONNX file, an OpenVINO IR) writes it with ``export`` when the archive is built
(``zooserve/store``), so that a worker only loads it: no export at worker start. Which runtime serves a
model is chosen by measurement at build time (``zooserve/store/select.py``).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, get_args

import torch

RuntimeName = Literal["eager", "compile", "onnxruntime", "openvino"]
RUNTIME_NAMES: tuple[str, ...] = get_args(RuntimeName)
# the largest batch an exported artefact accepts (its batch dimension is dynamic up to this)
MAX_BATCH = 64


@dataclass(frozen=True)
class RuntimeOptions:
    """How a worker runs its model: where, with how many CPU threads, in which precision."""

    device: torch.device = torch.device("cpu")
    threads: int = 1
    half: bool = False  # float16 where the device is CUDA (CPU always runs float32)
    channels_last: bool = True

    @property
    def fp16(self) -> bool:
        return self.half and self.device.type == "cuda"


@dataclass(frozen=True)
class ModelSource:
    """Where a runtime finds its model: the archive's files, or the zoo model built in this process."""

    directory: Path
    build: Callable[[], torch.nn.Module]


class Runtime(ABC):
    name: ClassVar[str]
    input_dtype: torch.dtype = torch.float32

    @classmethod
    def supports(cls, device: torch.device) -> bool:
        return True

    @classmethod
    def export(cls, model: torch.nn.Module, example: torch.Tensor, directory: Path) -> list[Path]:
        """Writes this runtime's artefact for ``model`` into ``directory``; the files written. ``model``
        must never have run under ``torch.inference_mode`` (tracing refuses inference tensors)."""
        return []

    @classmethod
    @abstractmethod
    def load(cls, source: ModelSource, options: RuntimeOptions) -> Runtime:
        """Ready to run, from the archive's files (or the zoo model, for the PyTorch runtimes)."""

    @abstractmethod
    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes) of a normalized batch in ``input_dtype`` on the worker's device."""

    def warm_up(self, example: torch.Tensor) -> None:
        """Runs a full batch and a single image once, so kernel selection (or compilation) happens at load."""
        self(example)
        self(example[:1])


def exported_program(model: torch.nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    """``model`` captured by ``torch.export`` with a dynamic batch dimension, what the ONNX and OpenVINO
    converters take."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    return torch.export.export(model, (example,), dynamic_shapes=({0: batch},))


def runtime_class(name: str) -> type[Runtime]:
    """The runtime's class; its module (and the library behind it) is imported only when asked for."""
    if name not in RUNTIME_NAMES:
        raise ValueError(f"unknown runtime {name!r}: one of {', '.join(RUNTIME_NAMES)}")
    module = importlib.import_module(f"{__name__}.{name}")  # one module per runtime, named as it
    return module.RUNTIME


def load_runtime(name: str, source: ModelSource, options: RuntimeOptions) -> Runtime:
    return runtime_class(name).load(source, options)
