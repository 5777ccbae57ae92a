"""Interleaved group convolution networks, IGCV1 and IGCV2.

IGCV1: Zhang, Qi, Xiao, Wang, "Interleaved Group Convolutions for Deep Neural Networks", ICCV 2017
(arXiv 1707.02725); reference code github.com/hellozting/InterleavedGroupConvolutions.
IGCV2: Xie, Wang, Zhang, Lai, Hong, Qi, "IGCV2: Interleaved Structured Sparse Convolutional Neural
Networks", CVPR 2018 (arXiv 1804.06202).
The shared blocks (group convolutions joined by channel permutations) live in ``_group_conv.py``.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..meta import Figure, ModelInfo, Paper, Preprocess, imagenet_preprocess
from ..registry import register_model
from ._group_conv import group_conv, igc_v1, igc_v2

IGCV1_PAPER = Paper(
    title="Interleaved Group Convolutions for Deep Neural Networks",
    authors="Zhang, Qi, Xiao, Wang",
    venue="ICCV 2017",
    arxiv="1707.02725",
)
IGCV2_PAPER = Paper(
    title="IGCV2: Interleaved Structured Sparse Convolutional Neural Networks",
    authors="Xie, Wang, Zhang, Lai, Hong, Qi",
    venue="CVPR 2018",
    arxiv="1804.06202",
)

# The IGCV1 reference code's own pixel statistics (train_imagenet.py defaults, fb_mean=False), in [0, 1]
IGCV1_PREPROCESS = Preprocess(
    input_size=(3, 224, 224),
    crop_pct=224 / 256,  # validation: shorter side 480 x 0.533 = 256, centre crop 224
    mean=(123.370 / 255, 112.757 / 255, 99.406 / 255),
    std=(68.998 / 255, 66.093 / 255, 68.292 / 255),
)
BN_EPS = 2e-5  # MXNet BatchNorm eps of the IGCV1 code (momentum 0.9 there = 0.1 in PyTorch)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


def _init_weights(model: nn.Module) -> None:
    """MSRA init for convs (the IGCV1 code: Xavier gaussian, fan-in, magnitude 2), zero FC bias."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


class IGCBasicBlock(nn.Module):
    """A ResNet-18 basic block whose two 3x3 convs are IGC convs ("+Ident.": identity shortcut).

    IGC(stride) + BN + ReLU -> IGC + BN -> add shortcut -> ReLU. The shortcut is a 1x1 group conv with
    L groups + BN when the width or resolution changes (``get_shortcut`` of the reference code).
    """

    def __init__(self, in_channels: int, out_channels: int, primary_groups: int, stride: int):
        super().__init__()
        self.igc1 = nn.Sequential(
            igc_v1(in_channels, out_channels, primary_groups, stride), _bn(out_channels), nn.ReLU(inplace=True)
        )
        self.igc2 = nn.Sequential(igc_v1(out_channels, out_channels, primary_groups), _bn(out_channels))
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels and stride == 1
            else nn.Sequential(group_conv(in_channels, out_channels, 1, primary_groups, stride), _bn(out_channels))
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.igc2(self.igc1(x)) + self.shortcut(x))


class IGCResNet18(nn.Module):
    """IGC-L{L}M{M}+Ident.: ResNet-18 layout (2, 2, 2, 2 blocks) with IGC blocks; width C = L*M doubles at
    every stage by doubling L with M fixed (reference ``resnet_igc_imgnet_d18.py``)."""

    def __init__(self, primary_groups: int = 100, secondary_groups: int = 2, num_classes: int = 1000):
        super().__init__()
        width = primary_groups  # the stem has L channels; stage 1 doubles it to L*M (M = 2)
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, 3, bias=False),
            _bn(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages = []
        for i in range(4):
            groups = primary_groups * 2**i
            out = groups * secondary_groups
            blocks = [IGCBasicBlock(width, out, groups, 1 if i == 0 else 2), IGCBasicBlock(out, out, groups, 1)]
            stages.append(nn.Sequential(*blocks))
            width = out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.stages(self.stem(x))).flatten(1))


@register_model(
    ModelInfo(
        name="igcv1_l100m2_ident",
        family="igc",
        seed_name="IGC1",
        paper=IGCV1_PAPER,
        variant="IGC-L100M2+Ident. (ImageNet table; ResNet-18 layout, widths 200-400-800-1600)",
        seed_result="73.05/91.08 is the single-crop 224x224 result of IGC-L100M2+Ident. "
        "(26.95/8.92 test error in the ImageNet table)",
        source="ours",
        fidelity="paper",
        preprocess=IGCV1_PREPROCESS,
        paper_params=Figure(value=8.61e6, where="ImageNet table (reference README), IGC-L100M2+Ident."),
        paper_macs=Figure(value=1.3e9, where="ImageNet table (reference README), FLOPs = mult-adds"),
        params_note="8.61M counts conv + FC weights and FC bias (8,607,700); BN scale/shift add 30,200.",
    )
)
def igcv1_l100m2_ident(pretrained: bool = False) -> nn.Module:
    """IGC-L100M2+Ident., the ImageNet network of the paper's ImageNet table (the reference checkpoint
    ``resnet_gcwf_noshare_imagenet_d18b100``): stem 7x7/2 with 100 channels, max-pool, four stages of two
    IGC basic blocks with L = 100, 200, 400, 800 and M = 2, global average pool, FC."""
    return IGCResNet18(primary_groups=100, secondary_groups=2)


# IGCV2 on ImageNet: MobileNetV1 layout (Howard et al. 2017, Table 1): (output width, stride) of the 13
# channel-wise + point-wise layers after the 3x3/2 stem of 32 channels.
MOBILENET_V1_LAYERS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [
    (1024, 2),
    (1024, 1),
]


class IGCV2Net(nn.Module):
    """MobileNetV1 with every depthwise-separable layer replaced by an IGCV2 block (L = 3) + BN + ReLU."""

    def __init__(self, width_multiplier: float, groups: int, num_classes: int = 1000):
        super().__init__()

        def width(channels: int) -> int:  # multiplied, rounded to a multiple of the W_2 group count
            return max(groups, round(channels * width_multiplier / groups) * groups)

        c = width(32)
        layers: list[nn.Module] = [nn.Conv2d(3, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        for channels, stride in MOBILENET_V1_LAYERS:
            out = width(channels)
            layers += [igc_v2(c, out, groups, stride), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            c = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


IGCV2_NOTE = (
    "The IGCV2 paper's ImageNet architecture table was not available; what is from the sources: the IGCV2 "
    "block y = P3 W3 P2 W2 P1 W1 x with W1 a channel-wise 3x3 conv and W2, W3 1x1 group convs under the "
    "complementary condition (one path from every input to every output channel); the ImageNet models "
    "are named by width multipliers, IGCV2-1.0/0.5/0.25, are compared with MobileNetV1 and cost "
    "564M/156M/46M mult-adds (ShuffleNet V2, arXiv 1807.11164, Table 8, citing IGCV2). Inferred: the "
    "MobileNetV1 layout (stem, 13 blocks, strides); the widths (MobileNetV1 widths x 5/3, rounded to "
    "multiples of 3: 54-108-213-426-852-1707); W2 with 3 groups, hence W3 with 3 channels per group; "
    "BN + ReLU after the whole block, none between W1-W3 (as IGCV1's 'IGC + BN + ReLU'). The width and "
    "group count were fitted so that width multipliers 1.0, 0.5 and 0.25 give 562M, 157M and 46M "
    "mult-adds, matching all three published figures (a fixed W2 group count makes the cost quadratic "
    "in width, as the three figures are); preprocessing is the standard ImageNet one (not stated)."
)


@register_model(
    ModelInfo(
        name="igcv2_1_0",
        family="igc",
        seed_name="IGC2",
        paper=IGCV2_PAPER,
        variant="IGCV2-1.0, the ImageNet network compared with MobileNetV1 1.0 (reconstructed layout)",
        seed_result="IGCV2-1.0 reaches 70.7% top-1 (29.3% error in ShuffleNet V2's Table 8, citing IGCV2; "
        "the paper's own table was not read); 70.07 appears in no source and looks like a typo of 70.7",
        source="ours",
        fidelity="reconstructed",
        fidelity_note=IGCV2_NOTE,
        preprocess=imagenet_preprocess(224, 0.875),
        paper_macs=Figure(value=564e6, where="ShuffleNet V2 (arXiv 1807.11164) Table 8, citing IGCV2-1.0"),
        params_note="Still unknown: the paper's ImageNet table (its parameter count; secondary sources say about "
        "4.1M, unverified). This reconstruction is fitted to the mult-adds and has 4.7M parameters, 1.7M of "
        "them in the FC. No network of this form (MobileNetV1 layout, one width multiplier, W2 with g groups) "
        "meets both 564M mult-adds and 4.1M parameters within 5%: over g = 2 to 8 and multipliers 1.0 to 2.5 "
        "the closest is g = 2 at 1.3x, 4.08M but 501M.",
    )
)
def igcv2_1_0(pretrained: bool = False) -> nn.Module:
    """IGCV2-1.0, the network of the paper's ImageNet comparison with MobileNetV1 (reconstructed, see
    fidelity_note): the interleaved structured sparse block of Sec. 3 with L = 3 (channel-wise 3x3, then
    two interleaved 1x1 group convs) in the MobileNetV1 layout at 5/3 of its widths, W2 with 3 groups."""
    return IGCV2Net(width_multiplier=5 / 3, groups=3)
