"""CRU-Net: Chen, Jin, Kang, Feng, Yan, "Sharing Residual Units Through Collective Tensor Factorization
To Improve Deep Neural Networks", IJCAI 2018 (arXiv 1703.02180); reference README github.com/cypw/CRU-Net.

A collective residual unit (CRU, Fig. 3) is a pre-activation bottleneck whose first two layers, a 1x1
conv d -> w and a channel-wise 3x3 conv w -> w, are shared by all units of a sharing group; the two
following 1x1 convs (w -> w, w -> d) belong to each unit. CRU-Net-116 (Table 1) is ResNeXt-101 with the
units of the 28x28 and 14x14 stages made CRUs ("@x28x14"): one sharing group of 6 units at 28x28, three
of 6 at 14x14. The stem, the 56x56 and the 7x7 stages stay ResNeXt stages.
"""

from __future__ import annotations

from functools import partial

from timm.layers import BatchNormAct2d, create_conv2d
from timm.models.resnetv2 import DownsampleConv, PreActBottleneck
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
    mean=(124 / 255, 117 / 255, 104 / 255),
    std=(1 / (0.0167 * 255),) * 3,
)


def _bn_relu_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
    """Pre-activation conv: BN, ReLU, then a bias-free convolution (the order of every layer of Fig. 3)."""
    return nn.Sequential(
        BatchNormAct2d(in_channels), create_conv2d(in_channels, out_channels, kernel_size, stride=stride, groups=groups)
    )


class SharedConvs(nn.Module):
    """The shared part of a sharing group (green box of Fig. 3): 1x1 d -> w and channel-wise 3x3 w -> w."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.reduce = create_conv2d(channels, width, 1)
        self.spatial = create_conv2d(width, width, 3, groups=width)


class CollectiveResidualUnit(nn.Module):
    """x + [BN-ReLU-shared 1x1 -> BN-ReLU-shared 3x3 -> BN-ReLU-1x1 (w -> w) -> BN-ReLU-1x1 (w -> d)](x).

    Only the convolution kernels are shared; each unit keeps its own batch norms (as in the code derived
    from the reference implementation, github.com/bruinxiong/Modified-CRUNet-and-Residual-Attention-Network.mxnet).
    """

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.norm_reduce = BatchNormAct2d(channels)
        self.norm_spatial = BatchNormAct2d(width)
        self.mix = _bn_relu_conv(width, width, 1)
        self.expand = _bn_relu_conv(width, channels, 1)

    def forward(self, x: Tensor, shared: SharedConvs) -> Tensor:
        h = shared.spatial(self.norm_spatial(shared.reduce(self.norm_reduce(x))))
        return x + self.expand(self.mix(h))


class CRUStage(nn.Module):
    """A strided 1x1 projection to d channels, then ``units`` CRUs in sharing groups of ``share`` units.

    The shared 1x1 takes d input channels, so the first unit's branch works on the projected (already
    down-sampled) tensor; this reproduces Table 1's parameter counts (see the entries' notes).
    """

    def __init__(self, in_channels: int, channels: int, width: int, units: int, share: int, stride: int):
        super().__init__()
        self.share = share
        self.proj = _bn_relu_conv(in_channels, channels, 1, stride)
        self.shared = nn.ModuleList(SharedConvs(channels, width) for _ in range(-(-units // share)))
        self.units = nn.ModuleList(CollectiveResidualUnit(channels, width) for _ in range(units))

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x)
        for i, unit in enumerate(self.units):
            x = unit(x, self.shared[i // self.share])
        return x


def _resnext_stage(in_channels: int, channels: int, width: int, groups: int, units: int, stride: int):
    """Pre-activation ResNeXt stage ([1x1, w; 3x3, w, R groups; 1x1, d] x units), stride on the 3x3."""
    block = partial(
        PreActBottleneck,
        bottle_ratio=width / channels,
        groups=groups,
        conv_layer=create_conv2d,
        norm_layer=BatchNormAct2d,
    )
    first = block(in_channels, channels, stride=stride, proj_layer=DownsampleConv)
    return nn.Sequential(first, *(block(channels, channels) for _ in range(units - 1)))


class CRUNet116(nn.Module):
    """CRU-Net-116 @x28x14 (Table 1): units (3, 6, 18, 3); ``cardinality`` x ``base_width``d ResNeXt
    stages at 56x56 and 7x7, CRU stages of widths ``cru_widths`` at 28x28 and 14x14."""

    def __init__(self, cardinality: int, base_width: int, cru_widths: tuple[int, int], num_classes: int = 1000):
        super().__init__()
        width = cardinality * base_width  # ResNeXt width of the 56x56 stage
        self.stem = nn.Sequential(
            create_conv2d(3, 64, 7, stride=2), BatchNormAct2d(64), nn.MaxPool2d(3, 2, 1)
        )
        self.stages = nn.Sequential(
            _resnext_stage(64, 256, width, cardinality, 3, 1),
            CRUStage(256, 512, cru_widths[0], units=6, share=6, stride=2),
            CRUStage(512, 1024, cru_widths[1], units=18, share=6, stride=2),
            _resnext_stage(1024, 2048, width * 8, cardinality, 3, 2),
        )
        self.head_norm = BatchNormAct2d(2048)  # pre-activation networks end with BN + ReLU
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.head_norm(self.stages(self.stem(x)))).flatten(1))


DOWNSAMPLING_NOTE = (
    "Not established: where the CRU stages down-sample. Here a pre-activated 1x1 stride-2 projection "
    "to d channels opens the stage and the first unit's branch works on its output, which reproduces "
    "Table 1's parameter counts for CRU-Net-116 (43.5M + BN) and CRU-Net-56 (25.5M) and CRU-Net-56's "
    "4.9 GFLOPs, but gives 11.0 G mult-adds for CRU-Net-116 against the 13.3 G of Table 1 (putting the "
    "first branch at the input resolution, as the code derived from the reference does, gives 13.2 G but "
    "0.65M more parameters and 5.9 G for CRU-Net-56). Also inferred: per-unit batch norms (only conv "
    "kernels shared), BN-ReLU before every conv including the two shared ones, stride on the 3x3 of the "
    "ResNeXt stages, shortcut projections sharing the unit's pre-activation (ResNet v2)."
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
        fidelity="reconstructed",
        fidelity_note="Layer table from Table 1 (widths, groups, sharing groups) and the CRU of Fig. 3. "
        + DOWNSAMPLING_NOTE,
        preprocess=PREPROCESS,
        paper_params=Figure(value=43.7e6, where="Table 1"),
        paper_macs=Figure(value=13.3e9, where="Table 1 (FLOPs)"),
        params_note="Conv + FC weights and FC bias are 43.52M (one shared 1x1 + 3x3 per sharing group); "
        "BN adds about 0.15M. Mult-adds come out at 11.0G against Table 1's 13.3G: see fidelity_note.",
    )
)
def crunet116_32x4d(pretrained: bool = False) -> nn.Module:
    """CRU-Net-116 (32x4d @x28x14) of Table 1: conv2 [1x1,128; 3x3,128,R=32; 1x1,256] x3; conv3 CRUs
    [1x1,352 + 3x3,352,R=352 shared; 1x1,352; 1x1,512] x6 in one sharing group; conv4 CRUs
    [1x1,704 + 3x3,704,R=704 shared; 1x1,704; 1x1,1024] x18 in three groups of 6; conv5
    [1x1,1024; 3x3,1024,R=32; 1x1,2048] x3."""
    return CRUNet116(cardinality=32, base_width=4, cru_widths=(352, 704))


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
        fidelity_note="Only the model's size (318 MB) and accuracy are published; its layer table is not. "
        "Inferred: the 56x56 and 7x7 stages are ResNeXt 64x4d (widths 256 and 2048, 64 groups) and the "
        "CRU stages have widths 576 and 1152 (2 x 288 and 4 x 288, the 32x4d model's 352/704 pattern of "
        "2k and 4k) with k = 288 fitted to the size: k = 288 gives 317.6 MiB, k = 280 or 296 would give "
        "309 or 326 MiB; sharing groups as in Table 1. " + DOWNSAMPLING_NOTE,
        preprocess=PREPROCESS,
        paper_params=Figure(
            value=83.4e6,
            where="derived from the reference README's model size, 318 MB (MiB) / 4 bytes per float32 "
            "value, BN running statistics included",
        ),
        params_note="The README's sizes are MiB of float32 (the 32x4d model's 43.5M + BN gives its 168 MB); "
        "318 MiB is 83.4M stored values, of which about 0.23M are BN running statistics, not parameters.",
    )
)
def crunet116_64x4d(pretrained: bool = False) -> nn.Module:
    """The wider CRU-Net-116 (64x4d @x28x14) of the reference README, reconstructed: Table 1's layout with
    ResNeXt 64x4d stages at 56x56 and 7x7 and CRU widths 576 (28x28) and 1152 (14x14)."""
    return CRUNet116(cardinality=64, base_width=4, cru_widths=(576, 1152))
