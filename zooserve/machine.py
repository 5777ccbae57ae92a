"""A description of the machine a measurement ran on, for the generated docs."""

from __future__ import annotations

import platform
from pathlib import Path

import psutil
import torch


def describe_machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": psutil.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "gpu": gpu, "python": platform.python_version(), "torch": torch.__version__, "torchserve": "0.12.0",
            "torch_threads": torch.get_num_threads()}
