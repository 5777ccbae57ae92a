"""MobileNet (v1): Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", arXiv 2017."""

from torch import nn

from ..meta import Figure, ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import timm_model, timm_preprocess

PAPER = Paper(
    title="MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
    authors="Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto, Adam",
    venue="arXiv 2017",
    arxiv="1704.04861",
)
TAG = "mobilenetv1_100.ra4_e3600_r224_in1k"


@register_model(
    ModelInfo(
        name="mobilenet_v1",
        family="mobilenet",
        seed_name="MobileNet",
        paper=PAPER,
        variant="1.0 MobileNet-224 (Table 1 body, width multiplier 1, resolution 224)",
        seed_result="70.6 is 1.0 MobileNet-224 (Table 8)",
        source="timm",
        library_id="timm:mobilenetv1_100",
        fidelity="library",
        preprocess=timm_preprocess(TAG),
        paper_params=Figure(value=4.2e6, where="Table 8"),
        paper_macs=Figure(value=569e6, where="Table 8"),
        pretrained=Pretrained(library="timm", ref=TAG),
    )
)
def mobilenet_v1(pretrained: bool = False) -> nn.Module:
    """MobileNet of Table 1: a full convolution then 13 depthwise-separable layers."""
    return timm_model(TAG, pretrained)
