"""MobileNetV2: Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018."""

from torch import nn
from torchvision.models import MobileNet_V2_Weights
from torchvision.models import mobilenet_v2 as tv_mobilenet_v2

from ..meta import Figure, ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import timm_model, timm_preprocess, torchvision_preprocess

PAPER = Paper(
    title="MobileNetV2: Inverted Residuals and Linear Bottlenecks",
    authors="Sandler, Howard, Zhu, Zhmoginov, Chen",
    venue="CVPR 2018",
    arxiv="1801.04381",
)
TAG_140 = "mobilenetv2_140.ra_in1k"


@register_model(
    ModelInfo(
        name="mobilenet_v2_140",
        family="mobilenetv2",
        seed_name="MobileNetV2",
        paper=PAPER,
        variant="MobileNetV2 (1.4): the network of Table 2 with width multiplier 1.4",
        seed_result="74.7 is MobileNetV2 (1.4) (Table 4)",
        source="timm",
        library_id="timm:mobilenetv2_140",
        fidelity="library",
        preprocess=timm_preprocess(TAG_140),
        paper_params=Figure(value=6.9e6, where="Table 4"),
        paper_macs=Figure(value=585e6, where="Table 4"),
        params_tolerance=0.13,
        params_note="The built network has 6.1M parameters, as does the authors' own TF-slim release "
        "(mobilenet_v2_1.4_224); the 6.9M of Table 4 is not reproduced by any public implementation.",
        pretrained=Pretrained(library="timm", ref=TAG_140),
    )
)
def mobilenet_v2_140(pretrained: bool = False) -> nn.Module:
    """MobileNetV2 of Table 2 at width 1.4 (the last layer stays 1792 = 1280 x 1.4 wide)."""
    return timm_model(TAG_140, pretrained)


@register_model(
    ModelInfo(
        name="mobilenet_v2",
        family="mobilenetv2",
        paper=PAPER,
        variant="MobileNetV2 (1.0) of Table 2, 72.0 top-1 in Table 4 (a reference network for benchmarks)",
        source="torchvision",
        library_id="torchvision.models.mobilenet_v2",
        fidelity="library",
        preprocess=torchvision_preprocess(MobileNet_V2_Weights.IMAGENET1K_V1),
        paper_params=Figure(value=3.4e6, where="Table 4"),
        paper_macs=Figure(value=300e6, where="Table 4"),
        pretrained=Pretrained(library="torchvision", ref="MobileNet_V2_Weights.IMAGENET1K_V1"),
    )
)
def mobilenet_v2(pretrained: bool = False) -> nn.Module:
    """MobileNetV2 (1.0) of Table 2."""
    return tv_mobilenet_v2(weights=MobileNet_V2_Weights.IMAGENET1K_V1 if pretrained else None)
