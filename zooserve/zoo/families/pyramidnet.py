"""PyramidNet: Han, Kim, Kim, "Deep Pyramidal Residual Networks", CVPR 2017."""

from torch import nn

from ..meta import Figure, ModelInfo, Paper
from ..registry import register_model
from ._library import PYTORCHCV_IMAGENET

PAPER = Paper(title="Deep Pyramidal Residual Networks", authors="Han, Kim, Kim", venue="CVPR 2017", arxiv="1610.02915")


@register_model(
    ModelInfo(
        name="pyramidnet200_a450",
        family="pyramidnet",
        seed_name="PyramidNet",
        paper=PAPER,
        variant="PyramidNet-200 (bottleneck), alpha = 450, additive widening (ImageNet, Section 4.2)",
        seed_result="80.8/95.3 is PyramidNet-200 (alpha = 450) tested on 320x320 crops (19.2/4.7 error); "
        "on 224x224 crops, which we serve, the paper reports 20.1/5.4",
        source="pytorchcv",
        library_id="pytorchcv.models.pyramidnet.get_pyramidnet(blocks=200, alpha=450)",
        fidelity="library",
        preprocess=PYTORCHCV_IMAGENET,
        paper_params=Figure(value=116.4e6, where="ImageNet results table (Section 4.2)"),
        heavy=True,
    )
)
def pyramidnet200_a450(pretrained: bool = False) -> nn.Module:
    """PyramidNet-200 for ImageNet: widths grow by alpha/N per unit across stages of 3, 24, 36, 3 units."""
    from pytorchcv.models.pyramidnet import get_pyramidnet

    return get_pyramidnet(blocks=200, alpha=450, pretrained=pretrained)
