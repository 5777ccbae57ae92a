"""CRU-Net: Chen, Jin, Kang, Feng, Yan, "Sharing Residual Units Through Collective Tensor Factorization
To Improve Deep Neural Networks", IJCAI 2018 (arXiv 1703.02180); reference README github.com/cypw/CRU-Net.

Built unit for unit as the authors' MXNet symbol builds it (``ResidualFactory`` / ``CRUFactory`` and the
CRU-Net-116 ``get_before_pool``, whose code circulates with the released checkpoints; osmr/imgclsmob's
``crunet.py`` was written to load those checkpoints and agrees parameter by parameter), so the released
weights map one to one onto this module (``zooserve.zoo.convert.crunet``):

- every convolution is pre-activated: BN, ReLU, then a bias-free conv (``BN_AC_Conv``); MXNet BN eps 1e-3;
- a collective residual unit (CRU, Fig. 3) is BN-ReLU-[shared 1x1 d -> w] -> [shared channel-wise 3x3,
  no BN or ReLU before it] -> BN-ReLU-1x1 (w -> w) -> BN-ReLU-1x1 (w -> d); the two shared kernels
  (``1x1_bases[dim3]`` and ``3x3_bases[dim21]``) belong to a sharing group, everything else to the unit;
- a stage's first CRU projects its input with a stride-1 pre-activated 1x1 (``c1x1-w(s/1)``) that feeds
  the branch, whose shared 3x3 carries the stride; its shortcut is the same 1x1 kernel at the stride
  with a BN of its own (``c1x1-w(s/key)``);
- a ResNeXt unit is BN-ReLU-1x1, BN-ReLU-3x3 (R groups, the stride), BN-ReLU-1x1; its projection
  shortcut is a pre-activated 1x1 with a BN of its own (``c1x1-w(s/1|2)``);
- stem 7x7/2 conv, BN, ReLU, 3x3/2 max-pool; head BN, ReLU, 7x7 average pool, FC (``fc6``).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..meta import Figure, ModelInfo, Paper, Preprocess
from ..registry import register_model

PAPER = Paper(
    title="Sharing Residual Units Through Collective Tensor Factorization To Improve Deep Neural Networks",
    authors="Chen, Jin, Kang, Feng, Yan",
    venue="IJCAI 2018",
    arxiv="1703.02180",
)

# Reference README: subtract mean RGB [124, 117, 104], multiply by 0.0167; 224 centre crop of shorter side 256
PREPROCESS = Preprocess(
    input_size=(3, 224, 224),
    crop_pct=224 / 256,
    resize_size=256,
    mean=(124 / 255, 117 / 255, 104 / 255),
    std=(1 / (0.0167 * 255),) * 3,
)
BatchNorm = partial(nn.BatchNorm2d, eps=1e-3)  # MXNet BatchNorm's default epsilon


class PreActConv(nn.Module):
    """BN, ReLU, bias-free conv: the reference's ``BN_AC_Conv`` (``<name>__bn__bn_*``, ``<name>__conv_weight``)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.bn = BatchNorm(c_in)
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride, kernel_size // 2, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.relu(self.bn(x)))


class SharedProjection(nn.Module):
    """A projection whose kernel (``c1x1-w_weight``) is read through BN-ReLU at stride 1 (``w_s1``: the
    CRU branch's input, or a ResNeXt shortcut) and, for a down-sampling CRU, at the stride (``w_key``)."""

    def __init__(self, c_in: int, c_out: int, stride: int, cru: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(c_out, c_in, 1, 1))
        self.stride = stride
        self.bn = BatchNorm(c_in)  # c1x1-w(s/1), or c1x1-w(s/2) for a strided ResNeXt shortcut
        self.bn_key = BatchNorm(c_in) if cru and stride > 1 else None  # c1x1-w(s/key)

    def branch_input(self, x: Tensor) -> Tensor:
        """CRU only: the projected input of the branch, at stride 1."""
        return F.conv2d(F.relu(self.bn(x)), self.weight)

    def shortcut(self, x: Tensor) -> Tensor:
        bn = self.bn_key if self.bn_key is not None else self.bn
        return F.conv2d(F.relu(bn(x)), self.weight, stride=self.stride)


class ResNeXtUnit(nn.Module):
    """The reference's ``ResidualFactory``: [1x1, w; 3x3, w, R groups; 1x1, d] pre-activated, stride on the 3x3."""

    def __init__(self, c_in: int, channels: int, width: int, groups: int, stride: int):
        super().__init__()
        self.w = SharedProjection(c_in, channels, stride, cru=False) if c_in != channels or stride > 1 else None
        self.a = PreActConv(c_in, width, 1)
        self.b = PreActConv(width, width, 3, stride, groups)
        self.c = PreActConv(width, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.w is None else self.w.shortcut(x)
        return shortcut + self.c(self.b(self.a(x)))


class Bases(nn.Module):
    """The kernels a sharing group shares: 1x1 d -> w (``1x1_bases[dim3]``), channel-wise 3x3 (``3x3_bases[dim21]``)."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.dim3 = nn.Parameter(torch.empty(width, channels, 1, 1))
        self.dim21 = nn.Parameter(torch.empty(width, 1, 3, 3))


class SharedPreAct(nn.Module):
    """BN, ReLU, then a conv whose kernel belongs to the sharing group (the reference's c1x1-a of a CRU)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bn = BatchNorm(channels)

    def forward(self, x: Tensor, weight: Tensor) -> Tensor:
        return F.conv2d(F.relu(self.bn(x)), weight)


class CollectiveUnit(nn.Module):
    """The reference's ``CRUFactory``: BN-ReLU-shared 1x1, shared channel-wise 3x3 (the stride), BN-ReLU-1x1
    (w -> w, ``c1x1-b(2)``), BN-ReLU-1x1 (w -> d, ``c1x1-c``); only BN statistics and the last two
    kernels are the unit's own."""

    def __init__(self, c_in: int, channels: int, width: int, stride: int):
        super().__init__()
        self.stride = stride
        self.w = SharedProjection(c_in, channels, stride, cru=True) if c_in != channels or stride > 1 else None
        self.a = SharedPreAct(channels)
        self.b2 = PreActConv(width, width, 1)
        self.c = PreActConv(width, channels, 1)

    def forward(self, x: Tensor, bases: Bases) -> Tensor:
        shortcut, x = (x, x) if self.w is None else (self.w.shortcut(x), self.w.branch_input(x))
        h = self.a(x, bases.dim3)
        h = F.conv2d(h, bases.dim21, stride=self.stride, padding=1, groups=bases.dim21.shape[0])
        return shortcut + self.c(self.b2(h))


class CRUStage(nn.Module):
    """``units`` CRUs in sharing groups of ``share`` consecutive units (one group when ``share`` >= units)."""

    def __init__(self, c_in: int, channels: int, width: int, units: int, share: int, stride: int):
        super().__init__()
        self.share = share
        self.bases = nn.ModuleList(Bases(channels, width) for _ in range(-(-units // share)))
        self.units = nn.ModuleList(
            CollectiveUnit(c_in if i == 0 else channels, channels, width, stride if i == 0 else 1) for i in range(units)
        )

    def forward(self, x: Tensor) -> Tensor:
        for i, unit in enumerate(self.units):
            x = unit(x, self.bases[i // self.share])
        return x


class ResNeXtStage(nn.Module):
    def __init__(self, c_in: int, channels: int, width: int, groups: int, units: int, stride: int):
        super().__init__()
        self.units = nn.ModuleList(
            ResNeXtUnit(c_in if i == 0 else channels, channels, width, groups, stride if i == 0 else 1)
            for i in range(units)
        )

    def forward(self, x: Tensor) -> Tensor:
        for unit in self.units:
            x = unit(x)
        return x


class CRUNet116(nn.Module):
    """CRU-Net-116 @x28x14: units (3, 6, 18, 3); ResNeXt stages of ``groups`` x ``base_width``d at 56x56 and
    7x7 (widths 256 and 2048), CRU stages of widths ``cru_widths`` at 28x28 (one sharing group) and 14x14
    (three groups of 6). Stage attributes are named as the reference's (conv2 ... conv5)."""

    def __init__(self, groups: int, base_width: int, cru_widths: tuple[int, int], num_classes: int = 1000):
        super().__init__()
        width = groups * base_width
        self.stem = nn.Sequential()
        self.stem.conv = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.stem.bn = BatchNorm(64)
        self.stem.relu = nn.ReLU(inplace=True)
        self.stem.pool = nn.MaxPool2d(3, 2, 1)
        self.conv2 = ResNeXtStage(64, 256, width, groups, units=3, stride=1)
        self.conv3 = CRUStage(256, 512, cru_widths[0], units=6, share=6, stride=2)
        self.conv4 = CRUStage(512, 1024, cru_widths[1], units=18, share=6, stride=2)
        self.conv5 = ResNeXtStage(1024, 2048, width * 8, groups, units=3, stride=2)
        self.head_bn = BatchNorm(2048)
        self.fc = nn.Linear(2048, num_classes)
        for p in self.parameters():  # MSRA init for every kernel, the shared ones included
            if p.dim() == 4:
                nn.init.kaiming_normal_(p, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv5(self.conv4(self.conv3(self.conv2(self.stem(x)))))
        return self.fc(F.relu(self.head_bn(x)).mean((2, 3)))


REFERENCE_NOTE = (
    "Unit for unit the authors' MXNet symbol (ResidualFactory, CRUFactory, the CRU-Net-116 stage plan): "
    "parameter names and shapes map one to one onto the released checkpoint (zooserve.zoo.convert.crunet). "
)


@register_model(
    ModelInfo(
        name="crunet116_32x4d",
        family="crunet",
        paper=PAPER,
        variant="CRU-Net-116 @x28x14, 32x4d (Table 1)",
        seed_result="not the seed row: the reference README gives this model 20.6% top-1 error (79.4%) "
        "single-crop; the seed's 79.7 is the wider 64x4d model (crunet116_64x4d)",
        source="ours",
        fidelity="paper",
        fidelity_note=REFERENCE_NOTE + "Widths, groups and sharing groups as Table 1 (k_D = 128, 176).",
        preprocess=PREPROCESS,
        paper_params=Figure(value=43.7e6, where="Table 1"),
        paper_macs=Figure(value=13.3e9, where="Table 1 (FLOPs)"),
        params_note="Measured 43.66M (BN scale and shift included), as osmr/imgclsmob counts its port.",
    )
)
def crunet116_32x4d(pretrained: bool = False) -> nn.Module:
    """CRU-Net-116 (32x4d @x28x14) of Table 1: conv2 [1x1,128; 3x3,128,R=32; 1x1,256] x3; conv3 CRUs
    [1x1,352 + 3x3,352,R=352 shared; 1x1,352; 1x1,512] x6 in one sharing group; conv4 CRUs
    [1x1,704 + 3x3,704,R=704 shared; 1x1,704; 1x1,1024] x18 in three groups of 6; conv5
    [1x1,1024; 3x3,1024,R=32; 1x1,2048] x3."""
    return CRUNet116(groups=32, base_width=4, cru_widths=(352, 704))


@register_model(
    ModelInfo(
        name="crunet116_64x4d",
        family="crunet",
        seed_name="CRU-Net",
        paper=PAPER,
        variant="CRU-Net-116 @x28x14, 64x4d (the wider model of the reference README; reconstructed widths)",
        seed_result="79.7 top-1 is the reference README's single-crop 224x224 result of the wider "
        "CRU-Net-116 64x4d (20.3% error); the seed's top-5 94.7 was not found in the sources",
        source="ours",
        fidelity="reconstructed",
        fidelity_note=REFERENCE_NOTE + "Only the model's size (318 MB) and accuracy are published, not its "
        "widths. Inferred: ResNeXt 64x4d stages at 56x56 and 7x7 (widths 256 and 2048, 64 groups) and CRU "
        "widths 2k and 4k as in the 32x4d model (k_D = 176), with k = 288 fitted to the file size (see "
        "params_note); sharing groups as in Table 1.",
        preprocess=PREPROCESS,
        paper_params=Figure(
            value=83.4e6,
            where="derived from the reference README's model size, 318 MB (MiB) / 4 bytes per float32 "
            "value, BN running statistics included",
        ),
        params_note="The README's sizes are MiB of float32 files: the 32x4d model's parameters and BN "
        "statistics come to 167.1 MiB against its 168 MB. Here k = 288 stores 83.17M values (317.3 MiB; 82.98M "
        "parameters and 0.19M BN running statistics), which with the same 0.9 MiB of file overhead is the 318 MB; "
        "k = 286 or 290 gives 315.2 or 319.3 MiB.",
    )
)
def crunet116_64x4d(pretrained: bool = False) -> nn.Module:
    """The wider CRU-Net-116 (64x4d @x28x14) of the reference README, reconstructed: Table 1's layout with
    ResNeXt 64x4d stages at 56x56 and 7x7 and CRU widths 576 (28x28) and 1152 (14x14)."""
    return CRUNet116(groups=64, base_width=4, cru_widths=(576, 1152))
