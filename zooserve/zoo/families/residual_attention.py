"""Residual Attention Network: Wang et al., "Residual Attention Network for Image Classification", CVPR 2017."""

from torch import nn

from ..meta import Figure, ModelInfo, Paper
from ..registry import register_model
from ._library import PYTORCHCV_IMAGENET, pytorchcv_model

PAPER = Paper(
    title="Residual Attention Network for Image Classification",
    authors="Wang, Jiang, Qian, Yang, Li, Zhang, Wang, Tang",
    venue="CVPR 2017",
    arxiv="1704.06904",
)


@register_model(
    ModelInfo(
        name="resattnet92",
        family="residual_attention",
        seed_name="Residual Attention Network",
        paper=PAPER,
        variant="Attention-92: three stages of 1, 2 and 3 attention modules (Table 2 layout)",
        seed_result="80.5/95.2 is Attention-92, single crop (ImageNet comparison table, 19.5/4.8 error)",
        source="pytorchcv",
        library_id="pytorchcv:resattnet92",
        fidelity="library",
        preprocess=PYTORCHCV_IMAGENET,
        paper_params=Figure(value=51.3e6, where="ImageNet comparison table (Attention-92 row)"),
    )
)
def resattnet92(pretrained: bool = False) -> nn.Module:
    """Attention-92 with attention residual learning and mixed attention (Sections 3.1-3.3)."""
    return pytorchcv_model("resattnet92", pretrained)
