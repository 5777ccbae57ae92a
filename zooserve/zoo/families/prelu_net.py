"""PReLU-nets: He, Zhang, Ren, Sun, "Delving Deep into Rectifiers: Surpassing Human-Level Performance on
ImageNet Classification", ICCV 2015 (arXiv:1502.01852v1).

The large models A, B and C of Table 3: a 7x7/2 convolution, three stages of 3x3 convolutions on the 56, 28
and 14 maps, spatial pyramid pooling (SPP) of 7x7, 3x3, 2x2 and 1x1 bins, and three FC layers. A channel-wise
Parametric ReLU, f(y) = max(0, y) + a * min(0, y) with one learned a per channel (Eqn. 1), follows every
convolution and fc1/fc2; a starts at 0.25 (Sec. 2.1).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..meta import Figure, ModelInfo, Paper, imagenet_preprocess
from ..registry import register_model

PAPER = Paper(
    title="Delving Deep into Rectifiers: Surpassing Human-Level Performance on ImageNet Classification",
    authors="He, Zhang, Ren, Sun",
    venue="ICCV 2015",
    arxiv="1502.01852",
)

PRELU_INIT = 0.25  # Sec. 2.1: "We use a_i = 0.25 as the initialization throughout this paper."
SPP_LEVELS = (7, 3, 2, 1)  # Sec. 2.3: 4 levels, 63 bins in all


@dataclass(frozen=True)
class PReLUNetConfig:
    """One column of Table 3: the width and the number of 3x3 layers of the 56, 28 and 14 stages."""

    widths: tuple[int, int, int]
    depths: tuple[int, int, int]


MODEL_A = PReLUNetConfig(widths=(256, 512, 512), depths=(5, 5, 5))
MODEL_B = PReLUNetConfig(widths=(256, 512, 512), depths=(6, 6, 6))
MODEL_C = PReLUNetConfig(widths=(384, 768, 896), depths=(6, 6, 6))


class SpatialPyramidPooling(nn.Module):
    """Max-pools the last conv map into n x n bins for each level and concatenates the flattened levels.

    Adaptive bins give exactly n x n outputs at any map size; on the 14x14 map of a 224 crop the 7, 2 and 1
    levels coincide with SPP-net's windows (size ceil(14/n), stride floor(14/n)).
    """

    def __init__(self, levels: tuple[int, ...] = SPP_LEVELS):
        super().__init__()
        self.levels = levels

    def bins(self) -> int:
        return sum(n * n for n in self.levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.adaptive_max_pool2d(x, n).flatten(1) for n in self.levels], dim=1)


def _conv_prelu(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    # "same" padding: Table 3's map sizes (224 -> 112 for conv1, unchanged for the 3x3 layers) imply it
    return [nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2), nn.PReLU(out_ch, init=PRELU_INIT)]


class PReLUNet(nn.Module):
    """A large model of Table 3, with layer names that follow the table (conv2_1 ... conv4_6, fc1-fc3)."""

    def __init__(self, config: PReLUNetConfig, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        conv1, act1 = _conv_prelu(3, 96, kernel=7, stride=2)
        layers += [("conv1", conv1), ("prelu1", act1), ("pool1", nn.MaxPool2d(2, 2))]
        in_ch = 96
        for stage, (width, depth) in enumerate(zip(config.widths, config.depths), start=2):
            if stage > 2:
                layers.append((f"pool{stage - 1}", nn.MaxPool2d(2, 2)))
            for i in range(1, depth + 1):
                conv, act = _conv_prelu(in_ch, width, kernel=3)
                layers += [(f"conv{stage}_{i}", conv), (f"prelu{stage}_{i}", act)]
                in_ch = width
        self.features = nn.Sequential(OrderedDict(layers))
        self.spp = SpatialPyramidPooling()
        # Sec. 3: dropout (50%) in the first two fc layers; fc3 gives the class scores
        self.classifier = nn.Sequential(
            OrderedDict(
                fc1=nn.Linear(self.spp.bins() * in_ch, 4096),
                prelu_fc1=nn.PReLU(4096, init=PRELU_INIT),
                drop1=nn.Dropout(dropout),
                fc2=nn.Linear(4096, 4096),
                prelu_fc2=nn.PReLU(4096, init=PRELU_INIT),
                drop2=nn.Dropout(dropout),
                fc3=nn.Linear(4096, num_classes),
            )
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # Sec. 3 "we use Eqn. (14)": zero-mean Gaussian with Var[w] = 2 / ((1 + a^2) * k^2 * d) (the PReLU
        # form of Eqn. 14, d = output channels: fan-out), biases 0. Sec. 2.2 sets the fc layers by hand:
        # std 0.01 for fc1/fc2 and 0.001 for fc3.
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=PRELU_INIT, mode="fan_out", nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        for fc, std in ((self.classifier.fc1, 0.01), (self.classifier.fc2, 0.01), (self.classifier.fc3, 0.001)):
            nn.init.normal_(fc.weight, std=std)
            nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.spp(self.features(x)))


_SPP_NOTE = (
    "Table 3 and Sec. 2.3 give every layer (kernel, width, stride, pools, SPP levels, fc sizes). Inferred: "
    "the SPP pools by max (as in SPP-net [11], which the paper cites; [P] does not say) over adaptive n x n "
    "bins (identical to SPP-net's windows on the 14x14 map for the 7/2/1 levels; the 3x3 level's windows "
    "may differ by a row/column); 'same' padding (conv1 pad 3, 3x3 pad 1), implied by Table 3's map sizes. "
    "The paper feeds mean-subtracted 0-255 pixels; the zoo normalizes with ImageNet mean/std."
)


@register_model(
    ModelInfo(
        name="prelu_net_c",
        family="prelu_net",
        seed_name="PReLU-nets",
        paper=PAPER,
        variant="Model C of Table 3 (22 layers): 7x7/2 conv of 96, 2x2 max pools, 6+6+6 3x3 convs of "
        "384/768/896 filters at 56/28/14, SPP {7,3,2,1}, fc 4096-4096-1000; channel-wise PReLU",
        seed_result="95.06 top-5 is the six-model ensemble on the ImageNet test set (Table 7, 4.94% error); "
        "model C alone gives 21.59/5.71 top-1/top-5 error with multi-scale dense testing (Table 6) and "
        "24.27/7.38 with 10-view 224 crops (Table 5)",
        source="ours",
        fidelity="paper",
        fidelity_note=_SPP_NOTE + " Channel-wise PReLU is stated for model A (Sec. 4) and assumed for C.",
        preprocess=imagenet_preprocess(224, 0.875),
        paper_macs=Figure(value=5.30e10, where="Table 3, last row ('complexity (ops., x10^10)' 5.30)"),
        params_note="The paper states no parameter count. Computed from Table 3: conv weights 78,497,568 "
        "(7*7*3*96 + 9*96*384 + 5*9*384^2 + 9*384*768 + 5*9*768^2 + 9*768*896 + 5*9*896^2) plus fc weights "
        "252,084,224 (63*896*4096 + 4096^2 + 4096*1000) = 330,581,792; with biases and PReLU slopes the "
        "built model has 330,623,944 (330.6M).",
        heavy=True,
    )
)
def prelu_net_c(pretrained: bool = False) -> nn.Module:
    """Model C, Table 3 (the paper's best single model, Tables 5-6), with SPP as in Sec. 2.3."""
    return PReLUNet(MODEL_C)


@register_model(
    ModelInfo(
        name="prelu_net_a",
        family="prelu_net",
        paper=PAPER,
        variant="Model A of Table 3 (19 layers): 7x7/2 conv of 96, 2x2 max pools, 5+5+5 3x3 convs of "
        "256/512/512 filters at 56/28/14, SPP {7,3,2,1}, fc 4096-4096-1000; channel-wise PReLU. Served as "
        "the practical PReLU-net: 1.90 vs 5.30 x10^10 ops for model C",
        seed_result="A+PReLU: 25.59/8.23 top-1/top-5 error with 10-view testing (Table 5), 22.97/6.28 "
        "multi-scale dense (Table 6)",
        source="ours",
        fidelity="paper",
        fidelity_note=_SPP_NOTE + " Channel-wise PReLU for model A is stated in Sec. 4.",
        preprocess=imagenet_preprocess(224, 0.875),
        paper_macs=Figure(value=1.90e10, where="Table 3, last row ('complexity (ops., x10^10)' 1.90)"),
        params_note="The paper states no parameter count. Computed from Table 3: conv weights 25,007,904 "
        "plus fc weights 152,993,792 (63*512*4096 + 4096^2 + 4096*1000) = 178,001,696; with biases and "
        "PReLU slopes the built model has 178,032,072 (178.0M).",
        heavy=True,
    )
)
def prelu_net_a(pretrained: bool = False) -> nn.Module:
    """Model A, Table 3 (the 19-layer baseline of Sec. 2.3; Tables 4-6)."""
    return PReLUNet(MODEL_A)
