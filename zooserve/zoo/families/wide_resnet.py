"""Wide ResNet: Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016."""

from torch import nn
from torchvision.models import Wide_ResNet50_2_Weights
from torchvision.models import wide_resnet50_2 as tv_wide_resnet50_2

from ..meta import Figure, ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import torchvision_preprocess

PAPER = Paper(title="Wide Residual Networks", authors="Zagoruyko, Komodakis", venue="BMVC 2016", arxiv="1605.07146")


@register_model(
    ModelInfo(
        name="wide_resnet50_2",
        family="wide_resnet",
        seed_name="WRN",
        paper=PAPER,
        variant="WRN-50-2-bottleneck: ResNet-50 with the 3x3 convolutions of every bottleneck twice as wide",
        seed_result="78.1/94.21 is WRN-50-2-bottleneck, single crop: the summary Table 9 gives 21.9/5.79 error, while "
        "Table 8 gives 21.9/6.03 for the same network",
        source="torchvision",
        library_id="torchvision.models.wide_resnet50_2",
        fidelity="library",
        preprocess=torchvision_preprocess(Wide_ResNet50_2_Weights.IMAGENET1K_V1),
        paper_params=Figure(value=68.9e6, where="Table 8"),
        pretrained=Pretrained(library="torchvision", ref="Wide_ResNet50_2_Weights.IMAGENET1K_V1"),
    )
)
def wide_resnet50_2(pretrained: bool = False) -> nn.Module:
    """WRN-50-2-bottleneck of the ImageNet experiments."""
    return tv_wide_resnet50_2(weights=Wide_ResNet50_2_Weights.IMAGENET1K_V1 if pretrained else None)
