"""NASNet-style cells built from a genotype: the ops, the cell, the factorized reduction.

This follows the cell mechanics of the AmoebaNet reference code (tensorflow/tpu
``models/official/amoeba_net/network_utils.py``, class ``BaseCell``), which is the NASNet cell of
Zoph et al. (CVPR 2018) with AmoebaNet's op set:

* state 0 is the previous cell's output after ReLU -> 1x1 conv -> BN; state 1 is the output of the
  cell before that, brought to the current shape (factorized reduction if the resolution differs,
  ReLU -> 1x1 conv -> BN if only the width does);
* each of the pairwise combinations adds ``op_left(state_a) + op_right(state_b)`` and appends a state;
  in a reduction cell the ops that read states 0 or 1 have stride 2;
* the output concatenates the states flagged unused (after a factorized reduction where a state's
  shape does not match the last state's).

Layer order is the reference's: ReLU before each conv, BN (epsilon 1e-3, with scale and offset)
after it, no conv biases. Padding is symmetric (``k // 2``) rather than TensorFlow's SAME: output
shapes are identical, only the pixel alignment of stride-2 layers differs, which matters solely when
porting TensorFlow weights. Drop-path and the auxiliary head are training-only and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct, SeparableConvNormAct
from torch import nn

BatchNorm = partial(nn.BatchNorm2d, eps=1e-3)
"""BN as in the reference arg scope: epsilon 1e-3, scale and offset."""

OPS = ("identity", "avg_pool_3x3", "max_pool_3x3", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "conv_1x7_7x1")


@dataclass(frozen=True)
class Genotype:
    """One cell in the reference's encoding: two ops per combination (left, right), the hidden-state
    index each op reads (0 = previous cell, 1 = the one before), and a used-flag per hidden state;
    the output concatenates the unused ones."""

    ops: tuple[str, ...]
    inputs: tuple[int, ...]
    used: tuple[int, ...]

    def __post_init__(self):
        assert len(self.ops) == len(self.inputs) and len(self.ops) % 2 == 0, "two ops per combination"
        assert len(self.used) == 2 + len(self.ops) // 2, "one used-flag per hidden state"
        assert all(op in OPS for op in self.ops), f"unknown op in {self.ops}"
        assert all(i < 2 + k // 2 for k, i in enumerate(self.inputs)), "an op reads a later state"

    @property
    def concat(self) -> list[int]:
        return [i for i, flag in enumerate(self.used) if not flag]


def relu_conv_bn(c_in: int, c_out: int, kernel_size: int | tuple[int, int] = 1, stride=1) -> nn.Sequential:
    """ReLU -> conv (no bias) -> BN, the reference's unit for every plain conv."""
    conv = ConvNormAct(c_in, c_out, kernel_size, stride=stride, apply_act=False, norm_layer=BatchNorm)
    return nn.Sequential(nn.ReLU(), conv)


def sep_conv(c_in: int, c_out: int, kernel_size: int, stride: int) -> nn.Sequential:
    """Two repeats of ReLU -> depthwise k x k + pointwise 1x1 -> BN; only the first carries the stride."""
    return nn.Sequential(
        nn.ReLU(),
        SeparableConvNormAct(c_in, c_out, kernel_size, stride=stride, apply_act=False, norm_layer=BatchNorm),
        nn.ReLU(),
        SeparableConvNormAct(c_out, c_out, kernel_size, apply_act=False, norm_layer=BatchNorm),
    )


def pool(kind: str, stride: int) -> nn.Module:
    """3x3 pool, SAME-style: TensorFlow's SAME average pool leaves the padding out of the mean."""
    if kind == "avg":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    return nn.MaxPool2d(3, stride=stride, padding=1)


def conv_1x7_7x1(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """1x7 then 7x1 inside a 1x1 bottleneck to c_out / 4 (the reference code's bottleneck)."""
    mid = int(c_out / 4)
    return nn.Sequential(
        relu_conv_bn(c_in, mid, 1),
        relu_conv_bn(mid, mid, (1, 7), stride=(1, stride)),
        relu_conv_bn(mid, mid, (7, 1), stride=(stride, 1)),
        relu_conv_bn(mid, c_out, 1),
    )


def make_op(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """One genotype op mapping ``c_in`` channels to ``c_out``, as ``BaseCell._apply_operation`` does."""
    if name.startswith("sep_conv_"):
        return sep_conv(c_in, c_out, int(name[-1]), stride)
    if name == "conv_1x7_7x1":
        return conv_1x7_7x1(c_in, c_out, stride)
    if name == "identity":  # a strided or width-changing identity becomes a 1x1 conv
        return relu_conv_bn(c_in, c_out, 1, stride) if stride > 1 or c_in != c_out else nn.Identity()
    layer = pool(name[:3], stride)  # avg_pool_3x3 / max_pool_3x3
    if c_in == c_out:
        return layer
    # The reference projects a pooled state of another width with a 1x1 conv + BN and no ReLU.
    return nn.Sequential(layer, ConvNormAct(c_in, c_out, 1, apply_act=False, norm_layer=BatchNorm))


class FactorizedReduction(nn.Module):
    """Halves the resolution without dropping pixels: two stride-2 1x1 convs, the second on the input
    shifted by one pixel, concatenated, then BN. The reference asserts an even ``c_out``; for an odd
    one the extra channel goes to the second path, as TF-slim's NASNet ``factorized_reduction`` does."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.path1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.path2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = BatchNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.path1(x), self.path2(shifted)], dim=1))


def match_shape(c_in: int, c_out: int, stride: int) -> nn.Module:
    """Bring state 1 to the cell's shape (``_reduce_prev_layer``): ReLU, then a factorized reduction
    or a 1x1 conv + BN."""
    if stride == 2:
        return nn.Sequential(nn.ReLU(), FactorizedReduction(c_in, c_out))
    return relu_conv_bn(c_in, c_out, 1) if c_in != c_out else nn.Identity()


def fix_output_state(c_in: int, c_out: int, stride: int) -> nn.Module:
    """Bring an output state to the last state's shape (``_combine_unused_states``): a factorized
    reduction, which at stride 1 is a 1x1 conv + BN; no ReLU here."""
    if stride == 2:
        return FactorizedReduction(c_in, c_out)
    return ConvNormAct(c_in, c_out, 1, apply_act=False, norm_layer=BatchNorm)


class Cell(nn.Module):
    """A normal (``reduction=False``) or reduction cell of width ``width``.

    ``c_prev`` is the width of the previous cell's output; ``c_prev_prev`` that of the cell before,
    whose resolution is ``prev_prev_stride`` (1 or 2) times the previous one's. ``c_prev_prev=None``
    marks the first cell after the stem conv, where the reference feeds the stem conv's raw output
    in as both states (state 0 through the 1x1 conv, state 1 as it is).
    """

    def __init__(
        self,
        genotype: Genotype,
        c_prev: int,
        c_prev_prev: int | None,
        width: int,
        reduction: bool,
        prev_prev_stride: int = 1,
    ):
        super().__init__()
        self.genotype = genotype
        self.pre0 = relu_conv_bn(c_prev, width, 1)
        if c_prev_prev is None:
            self.pre1, channels = None, [width, c_prev]
        else:
            self.pre1, channels = match_shape(c_prev_prev, width, prev_prev_stride), [width, width]
        self.ops = nn.ModuleList()
        for k, (name, i) in enumerate(zip(genotype.ops, genotype.inputs)):
            self.ops.append(make_op(name, channels[i], width, 2 if reduction and i < 2 else 1))
            if k % 2:  # every op yields `width` channels at the cell's output resolution
                channels.append(width)
        final_stride = 2 if reduction else 1
        self.fix = nn.ModuleDict(
            {  # unused states whose shape differs from the last state's
                str(i): fix_output_state(channels[i], width, final_stride if i < 2 else 1)
                for i in genotype.concat
                if channels[i] != width or (i < 2 and reduction)
            }
        )
        self.out_channels = width * len(genotype.concat)

    def forward(self, x: torch.Tensor, x_prev: torch.Tensor | None) -> torch.Tensor:
        states = [self.pre0(x), x if self.pre1 is None else self.pre1(x_prev)]
        ops, inputs = self.ops, self.genotype.inputs
        for k in range(0, len(ops), 2):
            states.append(ops[k](states[inputs[k]]) + ops[k + 1](states[inputs[k + 1]]))
        return torch.cat(
            [self.fix[str(i)](states[i]) if str(i) in self.fix else states[i] for i in self.genotype.concat], dim=1
        )
