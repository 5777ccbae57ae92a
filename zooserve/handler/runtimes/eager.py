"""PyTorch eager execution: the zoo model itself (float16 on CUDA where asked, channels_last)."""

from __future__ import annotations

import torch

from . import ModelSource, Runtime, RuntimeOptions


class Eager(Runtime):
    name = "eager"

    def __init__(self, model: torch.nn.Module, options: RuntimeOptions):
        self.input_dtype = torch.float16 if options.fp16 else torch.float32
        self.memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
        self.model = model.to(options.device, dtype=self.input_dtype, memory_format=self.memory_format).eval()

    @classmethod
    def load(cls, source: ModelSource, options: RuntimeOptions) -> Eager:
        return cls(source.build(), options)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(batch.contiguous(memory_format=self.memory_format))


RUNTIME = Eager
