"""ResNeXt: Xie, Girshick, Dollar, Tu, He, "Aggregated Residual Transformations for Deep Neural Networks",
CVPR 2017."""

from torch import nn
from torchvision.models import ResNeXt101_64X4D_Weights
from torchvision.models import resnext101_64x4d as tv_resnext101_64x4d

from ..meta import Figure, ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import torchvision_preprocess

PAPER = Paper(
    title="Aggregated Residual Transformations for Deep Neural Networks",
    authors="Xie, Girshick, Dollar, Tu, He",
    venue="CVPR 2017",
    arxiv="1611.05431",
)


@register_model(
    ModelInfo(
        name="resnext101_64x4d",
        family="resnext",
        seed_name="ResNext",
        paper=PAPER,
        variant="ResNeXt-101 (64x4d): cardinality 64, bottleneck width 4 (Table 5)",
        seed_result="96.97 top-5 is the ILSVRC 2016 ensemble (3.03% top-5 error on the test set); the best "
        "single model, ResNeXt-101 (64x4d), reaches 20.4/5.3 at 224 and 19.1/4.4 at 320 (Table 5)",
        source="torchvision",
        library_id="torchvision.models.resnext101_64x4d",
        fidelity="library",
        preprocess=torchvision_preprocess(ResNeXt101_64X4D_Weights.IMAGENET1K_V1),
        paper_params=Figure(value=83.7e6, where="DPN paper (Chen et al., NIPS 2017), Table 2"),
        params_note="The ResNeXt paper states no count for 64x4d; the figure is the DPN paper's for this model.",
        pretrained=Pretrained(library="torchvision", ref="ResNeXt101_64X4D_Weights.IMAGENET1K_V1"),
    )
)
def resnext101_64x4d(pretrained: bool = False) -> nn.Module:
    """ResNeXt-101 (64x4d) of Table 5: ResNet-101's layout with 64 groups of width 4 in each bottleneck."""
    return tv_resnext101_64x4d(weights=ResNeXt101_64X4D_Weights.IMAGENET1K_V1 if pretrained else None)
