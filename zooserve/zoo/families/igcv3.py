"""IGCV3: Sun, Li, Liu, Wang, "IGCV3: Interleaved Low-Rank Group Convolutions for Efficient Deep Neural
Networks", BMVC 2018."""

from torch import nn

from ..meta import Figure, ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import pytorchcv_model, pytorchcv_preprocess

PAPER = Paper(
    title="IGCV3: Interleaved Low-Rank Group Convolutions for Efficient Deep Neural Networks",
    authors="Sun, Li, Liu, Wang",
    venue="BMVC 2018",
    arxiv="1806.00178",
)


@register_model(
    ModelInfo(
        name="igcv3_d_1_0",
        family="igcv3",
        seed_name="IGC3",
        paper=PAPER,
        variant="IGCV3-D 1.0: MobileNetV2's layout with interleaved low-rank group convolution blocks",
        seed_result="72.2 is IGCV3-D 1.0 on ImageNet (comparison with MobileNetV2 table)",
        source="pytorchcv",
        library_id="pytorchcv:igcv3_w1",
        fidelity="library",
        preprocess=pytorchcv_preprocess("igcv3_w1"),
        pretrained=Pretrained(library="pytorchcv", ref="igcv3_w1"),
        paper_params=Figure(value=3.5e6, where="ImageNet comparison table (IGCV3-D 1.0 row)"),
        paper_macs=Figure(value=318e6, where="ImageNet comparison table (IGCV3-D 1.0 row)"),
    )
)
def igcv3_d_1_0(pretrained: bool = False) -> nn.Module:
    """IGCV3-D at width 1.0: group 1x1 (2 groups) - depthwise 3x3 - group 1x1 blocks with channel permutation."""
    return pytorchcv_model("igcv3_w1", pretrained)
