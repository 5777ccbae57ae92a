"""ResNets for small images, Section 4.2 of He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.

Three stages of 2n basic blocks at widths 16, 32, 64 on 32x32 inputs, 6n + 2 layers. Registered here at
10 classes for the handwritten digits that ship inside scikit-learn, so the A/B demonstration
(`make demo-ab`) can train real models in a minute on a CPU and compare them with real accuracy.
"""

from torch import nn

from ..meta import ModelInfo, Paper, digits_preprocess
from ..registry import register_model

PAPER = Paper(
    title="Deep Residual Learning for Image Recognition",
    authors="He, Zhang, Ren, Sun",
    venue="CVPR 2016",
    arxiv="1512.03385",
)


def _info(name: str, layers: int, n: int) -> ModelInfo:
    return ModelInfo(
        name=name,
        family="resnet_cifar",
        paper=PAPER,
        variant=f"ResNet-{layers} for 32x32 inputs (Section 4.2, n = {n}), 10 classes: handwritten digits",
        source="pytorchcv",
        library_id=f"pytorchcv.models.resnet_cifar.get_resnet_cifar(blocks={layers})",
        fidelity="library",
        label_set="digits",
        preprocess=digits_preprocess(),
        params_note="Section 4.2 states 0.27M parameters for ResNet-20 on CIFAR-10; the 8-layer net is n = 1 of the "
        "same rule (the paper's smallest is n = 3).",
    )


def _resnet_cifar(layers: int) -> nn.Module:
    from pytorchcv.models.resnet_cifar import get_resnet_cifar

    return get_resnet_cifar(num_classes=10, blocks=layers, bottleneck=False)


@register_model(_info("resnet20_digits", 20, 3))
def resnet20_digits(pretrained: bool = False) -> nn.Module:
    """ResNet-20 of Section 4.2 (n = 3) at 10 classes."""
    return _resnet_cifar(20)


@register_model(_info("resnet8_digits", 8, 1))
def resnet8_digits(pretrained: bool = False) -> nn.Module:
    """ResNet-8: the Section 4.2 rule with n = 1, a deliberately weaker network for the demonstration."""
    return _resnet_cifar(8)
