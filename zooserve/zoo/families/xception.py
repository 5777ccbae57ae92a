"""Xception: Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017."""

from torch import nn

from ..meta import Figure, ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import timm_model, timm_preprocess

PAPER = Paper(
    title="Xception: Deep Learning with Depthwise Separable Convolutions",
    authors="Chollet",
    venue="CVPR 2017",
    arxiv="1610.02357",
)
TAG = "legacy_xception.tf_in1k"


@register_model(
    ModelInfo(
        name="xception",
        family="xception",
        seed_name="Xception",
        paper=PAPER,
        variant="Xception (Figure 5: entry, middle x8, exit flow)",
        seed_result="79.0/94.5 is Xception, single crop, single model (Table 1)",
        source="timm",
        library_id="timm:legacy_xception (timm's 'xception' name now means a different, aligned network)",
        fidelity="library",
        preprocess=timm_preprocess(TAG),
        paper_params=Figure(value=22_855_952, where="Table 3"),
        pretrained=Pretrained(library="timm", ref=TAG),
    )
)
def xception(pretrained: bool = False) -> nn.Module:
    """Xception of Figure 5: 36 convolution layers in 14 modules, linear residual connections."""
    return timm_model(TAG, pretrained)
