"""ONNX Runtime: the model exported to ONNX at build time (PyTorch's exporter, dynamic batch), run by the
CPU execution provider, or on CUDA by the TensorRT and CUDA providers where the installed onnxruntime
has them (float16 through TensorRT where asked)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from . import ModelSource, Runtime, RuntimeOptions, exported_program

log = logging.getLogger(__name__)
ONNX_FILE = "model.onnx"
INPUT, OUTPUT = "input", "logits"


def providers(options: RuntimeOptions) -> list:
    """Execution providers, best first; on CUDA only those this onnxruntime build has (the CPU wheel has
    none: then the CPU provider runs, and the log says so)."""
    if options.device.type != "cuda":
        return ["CPUExecutionProvider"]
    device_id = options.device.index or 0
    wanted = [
        ("TensorrtExecutionProvider", {"device_id": device_id, "trt_fp16_enable": options.fp16}),
        ("CUDAExecutionProvider", {"device_id": device_id}),
    ]
    available = set(ort.get_available_providers())
    chosen = [provider for provider in wanted if provider[0] in available]
    if not chosen:
        log.warning("onnxruntime %s has no CUDA provider: running on the CPU", ort.__version__)
    return [*chosen, "CPUExecutionProvider"]


class OnnxRuntime(Runtime):
    name = "onnxruntime"

    def __init__(self, session: ort.InferenceSession):
        self.session = session
        self.on_gpu = session.get_providers()[0] != "CPUExecutionProvider"

    @classmethod
    def export(cls, model: torch.nn.Module, example: torch.Tensor, directory: Path) -> list[Path]:
        program = torch.onnx.export(exported_program(model, example), (example,), dynamo=True, input_names=[INPUT],
                                    output_names=[OUTPUT], verbose=False)
        program.save(directory / ONNX_FILE)
        return sorted(directory.glob(f"{ONNX_FILE}*"))  # model.onnx.data too, if the weights were too large

    @classmethod
    def load(cls, source: ModelSource, options: RuntimeOptions) -> OnnxRuntime:
        settings = ort.SessionOptions()
        settings.intra_op_num_threads = options.threads
        settings.inter_op_num_threads = 1
        settings.log_severity_level = 3  # errors only: its warnings about unused providers are not ours
        session = ort.InferenceSession(str(source.directory / ONNX_FILE), settings, providers=providers(options))
        return cls(session)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.is_cuda and self.on_gpu:
            return self._on_cuda(batch)
        batch = batch.cpu()
        logits = self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(batch.numpy())})[0]
        return torch.from_numpy(logits)

    def _on_cuda(self, batch: torch.Tensor) -> torch.Tensor:
        """Input and output bound in the GPU's memory: no copy through the host."""
        batch = batch.contiguous()
        binding = self.session.io_binding()
        binding.bind_input(INPUT, "cuda", batch.device.index or 0, np.float32, tuple(batch.shape), batch.data_ptr())
        binding.bind_output(OUTPUT, "cuda", batch.device.index or 0)
        self.session.run_with_iobinding(binding)
        return torch.from_numpy(binding.copy_outputs_to_cpu()[0])


RUNTIME = OnnxRuntime
