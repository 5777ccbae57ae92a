"""OpenVINO on the CPU: the model converted to OpenVINO's IR at build time (float32 weights, dynamic
batch), compiled for this CPU when the worker starts, float32 inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import torch

from . import ModelSource, Runtime, RuntimeOptions, exported_program

IR_FILE = "model.xml"  # its weights beside it, model.bin


class OpenVino(Runtime):
    name = "openvino"

    def __init__(self, compiled: ov.CompiledModel):
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    @classmethod
    def supports(cls, device: torch.device) -> bool:
        return device.type == "cpu"

    @classmethod
    def export(cls, model: torch.nn.Module, example: torch.Tensor, directory: Path) -> list[Path]:
        # the batch dynamic, the image size fixed (the model's input size)
        converted = ov.convert_model(exported_program(model, example), input=[ov.PartialShape([-1, *example.shape[1:]])])
        ov.save_model(converted, directory / IR_FILE, compress_to_fp16=False)  # its default halves the weights
        return [directory / IR_FILE, (directory / IR_FILE).with_suffix(".bin")]

    @classmethod
    def load(cls, source: ModelSource, options: RuntimeOptions) -> OpenVino:
        core = ov.Core()
        # No pinning: each worker process would pin its threads to the first cores, so TorchServe's workers
        # would all share them and leave the others idle (measured by loadtests/openvino_pinning.py).
        config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": options.threads,
                  "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
        return cls(core.compile_model(core.read_model(source.directory / IR_FILE), "CPU", config))

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.request.infer({0: np.ascontiguousarray(batch.numpy())}, share_inputs=True)
        # the output tensor is reused by the next inference: copy it out
        return torch.from_numpy(self.request.get_output_tensor(0).data.copy())


RUNTIME = OpenVino
