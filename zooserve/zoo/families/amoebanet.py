"""AmoebaNet-A: Real, Aggarwal, Huang, Le, "Regularized Evolution for Image Classifier Architecture
Search", AAAI 2019 (arXiv 1802.01548).

The cells are the reference genotype ``amoeba_net_a`` (== ``evol_net_g``) of tensorflow/tpu
``models/experimental/amoeba_net/model_specs.py``; the cell mechanics, stem and layout follow
``models/official/amoeba_net`` (``network_utils.BaseCell``, ``model_builder``, ``imagenet_hparams``).
This is not the DARTS transcription (``quark0/darts`` ``genotypes.AmoebaNet``), which reads the
states in swapped order and concatenates fewer of them (3F instead of 4F/5F); only the reference
genotype reproduces the parameter counts of the paper's Table 2.
"""

from __future__ import annotations

import torch
from torch import nn

from ..meta import INCEPTION_MEAN, INCEPTION_STD, Figure, ModelInfo, Paper, imagenet_preprocess
from ..registry import register_model
from ._nas_cells import BatchNorm, Cell, Genotype

PAPER = Paper(
    title="Regularized Evolution for Image Classifier Architecture Search",
    authors="Real, Aggarwal, Huang, Le",
    venue="AAAI 2019",
    arxiv="1802.01548",
)

NORMAL = Genotype(  # reference `get_normal_cell('amoeba_net_a')`
    ops=(
        *("avg_pool_3x3", "max_pool_3x3"),
        *("sep_conv_3x3", "identity"),
        *("identity", "avg_pool_3x3"),
        *("sep_conv_3x3", "sep_conv_5x5"),
        *("avg_pool_3x3", "sep_conv_3x3"),
    ),  # (left, right) per combination
    inputs=(0, 0, 1, 1, 0, 1, 0, 2, 5, 0),
    used=(1, 0, 1, 0, 0, 1, 0),  # output = concat of states 1, 3, 4, 6 = 4F
)
REDUCTION = Genotype(  # reference `get_reduction_cell('amoeba_net_a')`
    ops=(
        *("sep_conv_3x3", "avg_pool_3x3"),
        *("max_pool_3x3", "sep_conv_7x7"),
        *("max_pool_3x3", "max_pool_3x3"),
        *("sep_conv_3x3", "conv_1x7_7x1"),
        *("avg_pool_3x3", "sep_conv_7x7"),
    ),
    inputs=(1, 0, 0, 2, 1, 0, 4, 0, 1, 0),
    used=(1, 1, 0, 0, 0, 0, 0),  # output = concat of states 2..6 = 5F
)


class AmoebaNet(nn.Module):
    """The ImageNet network of the reference ``model_builder`` (paper "Methods Details"):

    3x3/2 VALID stem conv (32) -> two reduction "stem cells" of width F/4 and F/2 -> N normal cells
    (F) -> reduction (2F) -> N normal (2F) -> reduction (4F) -> N normal (4F) -> ReLU -> global
    average pool -> dropout -> FC. Each cell reads the two cells before it. Widths are
    ``int(F * scale)`` as in the reference, so at F=190 the stem cells are 47 and 95 wide.
    """

    def __init__(
        self, num_normal: int, width: int, num_classes: int = 1000, stem_width: int = 32, drop_rate: float = 0.5
    ):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, stem_width, 3, stride=2, bias=False), BatchNorm(stem_width))
        plan = [(int(width / 4), True), (int(width / 2), True)]  # the two stem cells
        for stage in range(3):
            if stage:
                plan.append((width << stage, True))
            plan += [(width << stage, False)] * num_normal
        cells, c_prev_prev, c_prev, prev_reduced = [], None, stem_width, False
        for c, reduction in plan:
            cell = Cell(
                REDUCTION if reduction else NORMAL,
                c_prev,
                c_prev_prev,
                c,
                reduction,
                prev_prev_stride=2 if prev_reduced else 1,
            )
            cells.append(cell)
            c_prev_prev, c_prev, prev_reduced = c_prev, cell.out_channels, reduction
        self.cells = nn.ModuleList(cells)
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(drop_rate))
        self.num_features = c_prev
        self.fc = nn.Linear(c_prev, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # The reference initializes convs and the FC with variance scaling, fan-out mode.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_prev, x = None, self.stem(x)
        for cell in self.cells:
            x_prev, x = x, cell(x, x_prev)
        return self.fc(self.head(x))


def _info(name: str, width: int, **kwargs) -> ModelInfo:
    return ModelInfo(
        name=name,
        family="amoebanet",
        paper=PAPER,
        source="ours",
        fidelity="paper",
        # 331x331 inputs (Methods Details); the reference evaluation (inception_preprocessing) crops
        # the central 87.5%, resizes bilinearly and scales pixels to [-1, 1].
        preprocess=imagenet_preprocess(331, 0.875, mean=INCEPTION_MEAN, std=INCEPTION_STD),
        fidelity_note=(
            f"Cells, stem and layout from the reference code (N=6 normal cells per stack, F={width}). "
            "Inference graph only: the auxiliary head (after the last normal cell of stack 2, training "
            "only) and drop-path are left out. 1000 classes; the TPU code's 1001st is a background class. "
            "At odd widths the factorized reduction gives the extra channel to its second path "
            "(TF-slim's NASNet convention; the TPU code asserts even widths)."
        ),
        **kwargs,
    )


@register_model(
    _info(
        "amoebanet_a_n6_f448",
        448,
        seed_name="AmoebaNet",
        variant="AmoebaNet-A (N=6, F=448) at 331x331, the paper's largest ImageNet model",
        seed_result="83.9/96.6 is AmoebaNet-A (N=6, F=448), single model, single crop (Table 2)",
        paper_params=Figure(value=469e6, where="Table 2"),
        paper_macs=Figure(value=104e9, where="Table 2"),
        macs_tolerance=0.22,
        params_note=(
            "Built: 468.15M parameters with 1000 classes (468.16M with the reference's 1001; the spec "
            "sheet's analytic count is 468.2M). Mult-adds: 126.5B at 331x331 against Table 2's 104B; "
            "the same network at 299x299 counts 103.9B, so Table 2's figure looks like a 299 count."
        ),
        heavy=True,
    )
)
def amoebanet_a_n6_f448(pretrained: bool = False) -> nn.Module:
    """AmoebaNet-A, N=6, F=448 (Table 2: 469M params, 83.9 / 96.6); cells of the reference spec."""
    return AmoebaNet(num_normal=6, width=448)


@register_model(
    _info(
        "amoebanet_a_n6_f190",
        190,
        variant="AmoebaNet-A (N=6, F=190) at 331x331, the paper's mid-size ImageNet model",
        seed_result="82.8/96.1 in Table 2 (not the seed row, which quotes F=448)",
        paper_params=Figure(value=86.7e6, where="Table 2"),
        paper_macs=Figure(value=23.1e9, where="Table 2"),
        params_note=(
            "Built: 86.72M parameters and 23.13B mult-adds at 331x331 (1000 classes), as the spec "
            "sheet's analytic count of the reference (86.72M, 23.13B with 1001 classes). The stem cells "
            "are int(F/4)=47 and int(F/2)=95 wide; the second stem cell's factorized reduction to 95 "
            "channels splits them 47 + 48."
        ),
    )
)
def amoebanet_a_n6_f190(pretrained: bool = False) -> nn.Module:
    """AmoebaNet-A, N=6, F=190 (Table 2: 86.7M params, 23.1B mult-adds, 82.8 / 96.1)."""
    return AmoebaNet(num_normal=6, width=190)
