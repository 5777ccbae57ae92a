"""Converters from the official checkpoint formats of networks no library ships to our safetensors.

``python -m zooserve.zoo.convert.crunet`` (the CRU-Net authors' MXNet ``.params``) and
``python -m zooserve.zoo.convert.shufflenetv2_large`` (Megvii's PyTorch checkpoint); the file they write is
what ``zooserve store build NAME --weights NAME=FILE`` takes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from ..registry import create_model
from ..weights import save_weights


def write_converted(state: dict[str, torch.Tensor], model_name: str, output: Path) -> int:
    """Loads the converted tensors into the model (strictly) and writes them as safetensors."""
    model = create_model(model_name)
    model.load_state_dict(state)
    save_weights(model, output)
    print(f"wrote {output} ({len(state)} tensors) for {model_name}", file=sys.stderr)
    return 0
