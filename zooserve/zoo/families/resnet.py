"""ResNet: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016."""

from torch import nn
from torchvision.models import (
    ResNet18_Weights,
    ResNet50_Weights,
    ResNet152_Weights,
)
from torchvision.models import (
    resnet18 as tv_resnet18,
)
from torchvision.models import (
    resnet50 as tv_resnet50,
)
from torchvision.models import (
    resnet152 as tv_resnet152,
)

from ..meta import Figure, ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import torchvision_preprocess

PAPER = Paper(
    title="Deep Residual Learning for Image Recognition",
    authors="He, Zhang, Ren, Sun",
    venue="CVPR 2016",
    arxiv="1512.03385",
)


NO_PARAMS_STATED = "The paper states FLOPs, not parameter counts, for its ImageNet networks."


def _info(name: str, depth: int, weights, flops: float, params_note: str = NO_PARAMS_STATED, **kwargs) -> ModelInfo:
    return ModelInfo(
        name=name,
        family="resnet",
        paper=PAPER,
        variant=f"ResNet-{depth} (Table 1, bottleneck blocks from 50 layers up)",
        source="torchvision",
        library_id=f"torchvision.models.{name}",
        fidelity="library",
        preprocess=torchvision_preprocess(weights),
        paper_macs=Figure(value=flops, where="Table 1 (FLOPs, counted as multiply-adds)"),
        params_note=params_note,
        pretrained=Pretrained(library="torchvision", ref=f"{type(weights).__name__}.{weights.name}"),
        **kwargs,
    )


@register_model(
    _info(
        "resnet152",
        152,
        ResNet152_Weights.IMAGENET1K_V1,
        11.3e9,
        seed_name="ResNet",
        seed_result="96.43 top-5 is the ILSVRC 2015 ensemble of six networks (Table 5, 3.57% top-5 error on the "
        "test set); the best single model, ResNet-152, reaches 19.38/4.49 top-1/top-5 error with multi-scale "
        "fully-convolutional testing (Table 4), 21.43/5.71 with 10-crop testing (Table 3)",
    )
)
def resnet152(pretrained: bool = False) -> nn.Module:
    """ResNet-152, Table 1: bottleneck stages of 3, 8, 36 and 3 blocks."""
    return tv_resnet152(weights=ResNet152_Weights.IMAGENET1K_V1 if pretrained else None)


@register_model(
    _info(
        "resnet50", 50, ResNet50_Weights.IMAGENET1K_V2, 3.8e9, macs_tolerance=0.08,
        params_note=NO_PARAMS_STATED + " torchvision's ResNet-50 strides in the 3x3 conv of a down-sampling block, "
        "where the paper's strides in the first 1x1: 4.09G mult-adds measured against the paper's 3.8G.",
    )
)
def resnet50(pretrained: bool = False) -> nn.Module:
    """ResNet-50, Table 1: bottleneck stages of 3, 4, 6 and 3 blocks (a reference network for benchmarks)."""
    return tv_resnet50(weights=ResNet50_Weights.IMAGENET1K_V2 if pretrained else None)


@register_model(_info("resnet18", 18, ResNet18_Weights.IMAGENET1K_V1, 1.8e9))
def resnet18(pretrained: bool = False) -> nn.Module:
    """ResNet-18, Table 1: basic-block stages of 2, 2, 2 and 2 blocks (a reference network for benchmarks)."""
    return tv_resnet18(weights=ResNet18_Weights.IMAGENET1K_V1 if pretrained else None)
