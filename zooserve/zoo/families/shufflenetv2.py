"""ShuffleNet V2: Ma, Zhang, Zheng, Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN
Architecture Design", ECCV 2018 (arXiv 1807.11164).

The seed's 81.44 is the paper's large model, SE-ShuffleNet v2-164 with residual connections (Table 8),
released by the authors as ``ShuffleNetV2.Large`` (github.com/megvii-model/ShuffleNet-Series, MIT
licence): built here block for block as that repository's ``network.py``, with its parameter names, so
its checkpoints convert one to one (``zooserve.zoo.convert.shufflenetv2_large``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models import ShuffleNet_V2_X2_0_Weights
from torchvision.models import shufflenet_v2_x2_0 as tv_shufflenet_v2_x2_0

from ..meta import Figure, ModelInfo, Paper, Preprocess, Pretrained
from ..registry import register_model
from ._library import torchvision_preprocess

PAPER = Paper(
    title="ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
    authors="Ma, Zhang, Zheng, Sun",
    venue="ECCV 2018",
    arxiv="1807.11164",
)
# (stage name prefix, blocks, half width) of ShuffleNetV2.Large; stage 2 keeps the resolution
LARGE_STAGES = ((2, 10, 128), (3, 10, 256), (4, 23, 512), (5, 10, 1024))
# per-channel means of the repository's 224x224 BGR mean image (ImageNet_1000_scale224_mean.xml): the
# fixed-seed model's stand-in; the converter carries the whole image
BGR_MEAN = (103.06, 115.90, 123.15)


class ConvBN(nn.Sequential):
    """conv (no bias), BN (eps 1e-9, as the reference), ReLU unless ``relu=False`` (``Conv_BN_ReLU``)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, groups: int = 1, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride, kernel_size // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-9)
        if relu:
            self.relu = nn.ReLU(inplace=True)


class LargeBlock(nn.Module):
    """The reference's ``ShuffleV2Block`` with SE: even channels to the projection side, odd ones to the
    main branch (1x1, 3x3 with 8 groups and the stride, 1x1 without ReLU, then SE without reduction);
    the first block of a stage projects its side with a full 3x3 conv and has no residual; the others
    add the branch input back; ReLU over the concatenation, and a 1x1 conv after a stride-2 block."""

    def __init__(self, c_in: int, c: int, stride: int, first: bool):
        super().__init__()
        self.stride = stride
        if stride == 2:
            self.down = ConvBN(2 * c, 2 * c, 1)
        if first:
            self.proj = ConvBN(c_in, c, 3, stride, relu=False)
        self.branch_main = nn.Sequential(
            ConvBN(c_in, c, 1), ConvBN(c, c, 3, stride, groups=8), ConvBN(c, c, 1, relu=False)
        )
        self.se_fc1 = nn.Linear(c, c)
        self.se_fc2 = nn.Linear(c, c)

    def forward(self, x: Tensor) -> Tensor:
        side, x = x[:, 0::2], x[:, 1::2]
        main = self.branch_main(x)
        scale = torch.sigmoid(self.se_fc2(torch.relu(self.se_fc1(main.mean((2, 3))))))
        main = main * scale[:, :, None, None]
        if hasattr(self, "proj"):
            side = self.proj(side)
        else:
            main = main + x
        out = torch.relu(torch.cat((side, main), 1))
        return self.down(out) if self.stride == 2 else out


class AuxHead(nn.Sequential):
    """A training-only auxiliary classifier of the reference (``ExtraLabelPredict``)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.conv = nn.Sequential(ConvBN(channels, channels, 1), ConvBN(channels, channels, 3))
        self.globalpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)


class ShuffleNetV2Large(nn.Module):
    """SE-ShuffleNet v2-164: 3-conv stem (64, 64, 128), max-pool, stages of 10, 10, 23, 10 blocks (block
    outputs 256, 512, 1024, 2048), 3x3 conv to 1280, 7x7 average pool, dropout, FC. The input is BGR on
    0..255 minus the 224x224 mean image (``input_mean``, a buffer the weights carry), as the reference's
    validation. ``aux_heads`` adds the three training-only classifiers the published 140.7M counts."""

    def __init__(self, num_classes: int = 1000, aux_heads: bool = False):
        super().__init__()
        self.register_buffer("input_mean", torch.tensor(BGR_MEAN).view(3, 1, 1).expand(3, 224, 224).clone())
        self.first_conv = nn.Sequential(ConvBN(3, 64, 3, 2), ConvBN(64, 64, 3), ConvBN(64, 128, 3))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.features = nn.ModuleList()
        c_in = 64
        for prefix, blocks, c in LARGE_STAGES:
            stage = nn.Sequential()
            for i in range(blocks):
                stride = 2 if i == 0 and prefix > 2 else 1
                stage.add_module(f"{prefix}{chr(ord('a') + i)}", LargeBlock(c_in if i == 0 else c, c, stride, i == 0))
            self.features.append(stage)
            c_in = c
        if aux_heads:
            self.predict_56, self.predict_28, self.predict_14 = (AuxHead(w, num_classes) for w in (256, 512, 1024))
        self.conv_last = ConvBN(2048, 1280, 3)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1280, num_classes)
        for name, m in self.named_modules():  # the reference's _initialize_weights
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.01 if name.startswith("first") else 1.0 / m.weight.shape[1])
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.bias, 1e-4)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.first_conv(x.flip(1) - self.input_mean))
        for stage in self.features:
            x = stage(x)
        return self.fc(self.dropout(self.conv_last(x).mean((2, 3))))


@register_model(
    ModelInfo(
        name="shufflenet_v2_large",
        family="shufflenetv2",
        seed_name="ShuffleNetV2",
        paper=PAPER,
        variant="SE-ShuffleNet v2-164 with residual connections (Table 8), the authors' ShuffleNetV2.Large",
        seed_result="81.44 is SE-ShuffleNet v2-164's top-1 (Table 8 and the authors' README: 18.56% error, "
        "4.48% top-5 error, 12.7 GFLOPs); single centre crop, as the authors evaluate",
        source="ours",
        fidelity="paper",
        fidelity_note="Block for block the authors' released network.py (ShuffleNetV2.Large), the network "
        "behind the published figures and checkpoints; parameter names map one to one onto its checkpoint. "
        "The paper's appendix table lists other stage widths (340/680/1360/2720, standard depthwise units "
        "without SE) for the same name and FLOPs; it describes no released model and is not built. "
        "Preprocessing as the reference's validation: shorter side 256 by bilinear resize without "
        "antialiasing (OpenCV INTER_LINEAR; the longer side here rounds down where OpenCV rounds to nearest, "
        "at most one pixel), 224 centre crop, BGR 0..255 minus the 224x224 mean image.",
        preprocess=Preprocess(
            input_size=(3, 224, 224), crop_pct=224 / 256, resize_size=256, antialias=False,
            mean=(0.0, 0.0, 0.0), std=(1 / 255,) * 3,
        ),
        paper_params=Figure(value=140.7e6, where="authors' README (ShuffleNetV2.Large), with training-only heads"),
        paper_macs=Figure(value=12.7e9, where="Table 8 and the authors' README (FLOPs = mult-adds)"),
        params_tolerance=0.12,
        params_note="The README's 140.7M counts the three training-only auxiliary classifiers: with them "
        "(ShuffleNetV2Large(aux_heads=True)) the count is 140.69M; the served network without them has 125.12M.",
        heavy=True,
    )
)
def shufflenet_v2_large(pretrained: bool = False) -> nn.Module:
    """SE-ShuffleNet v2-164 (ShuffleNetV2.Large) for inference, without the auxiliary heads."""
    return ShuffleNetV2Large()


@register_model(
    ModelInfo(
        name="shufflenet_v2_x2_0",
        family="shufflenetv2",
        paper=PAPER,
        variant="ShuffleNet v2 2x (Table 5)",
        seed_result="not the seed row (the seed quotes SE-ShuffleNet v2-164, shufflenet_v2_large); "
        "Table 8 gives the 2x network 25.1% top-1 error",
        source="torchvision",
        library_id="torchvision.models.shufflenet_v2_x2_0",
        fidelity="library",
        preprocess=torchvision_preprocess(ShuffleNet_V2_X2_0_Weights.IMAGENET1K_V1),
        paper_macs=Figure(value=591e6, where="Table 8 (MFLOPs)"),
        paper_params=Figure(value=7.4e6, where="Table 5 (number of weights, 2x column)"),
        pretrained=Pretrained(library="torchvision", ref="ShuffleNet_V2_X2_0_Weights.IMAGENET1K_V1"),
    )
)
def shufflenet_v2_x2_0(pretrained: bool = False) -> nn.Module:
    """ShuffleNet v2 2x: Table 5's stages at output widths 244, 488, 976 and a 2048-wide last conv."""
    return tv_shufflenet_v2_x2_0(weights=ShuffleNet_V2_X2_0_Weights.IMAGENET1K_V1 if pretrained else None)
