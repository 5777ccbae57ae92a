"""Parameter and multiply-add counts measured from the built model.

Models are built on PyTorch's ``meta`` device, so even the 470M-parameter networks are counted in
milliseconds without allocating their weights. Multiply-adds are half of the FLOPs that
``torch.utils.flop_counter.FlopCounterMode`` counts for convolutions and matrix products (it counts a
multiply-add as two FLOPs), which is the convention of the papers' "mult-adds".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .registry import _entry


@dataclass(frozen=True)
class Measured:
    params: int
    macs: int


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: tuple[int, int, int]) -> int:
    device = next(model.parameters()).device
    x = torch.empty((1, *input_size), device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(x)
    return counter.get_total_flops() // 2


def build_on_meta(name: str) -> nn.Module:
    entry = _entry(name)
    with torch.device("meta"):
        return entry.builder(pretrained=False)


@lru_cache(maxsize=None)
def measure(name: str) -> Measured:
    """Parameters and mult-adds of one image at the entry's input size."""
    model = build_on_meta(name)
    return Measured(count_params(model), count_macs(model, _entry(name).info.preprocess.input_size))
