"""VGG: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR 2015."""

from torch import nn
from torchvision.models import VGG19_Weights
from torchvision.models import vgg19 as tv_vgg19

from ..meta import Figure, ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import torchvision_preprocess

PAPER = Paper(
    title="Very Deep Convolutional Networks for Large-Scale Image Recognition",
    authors="Simonyan, Zisserman",
    venue="ICLR 2015",
    arxiv="1409.1556",
)


@register_model(
    ModelInfo(
        name="vgg19",
        family="vgg",
        seed_name="Vgg",
        paper=PAPER,
        variant="VGG-19 (configuration E, Table 1), no batch normalization",
        seed_result="76.3/93.2 is the ensemble of configurations D and E with multi-crop and dense evaluation "
        "(Table 6, repeated in Table 7: 23.7/6.8 error); the best single model, E, reaches 24.4/7.1 (Table 5)",
        source="torchvision",
        library_id="torchvision.models.vgg19",
        fidelity="library",
        preprocess=torchvision_preprocess(VGG19_Weights.IMAGENET1K_V1),
        paper_params=Figure(value=144e6, where="Table 2"),
        pretrained=Pretrained(library="torchvision", ref="VGG19_Weights.IMAGENET1K_V1"),
        heavy=True,
    )
)
def vgg19(pretrained: bool = False) -> nn.Module:
    """VGG-19, configuration E of Table 1: 16 3x3 convolutions in five stages, then three FC layers."""
    return tv_vgg19(weights=VGG19_Weights.IMAGENET1K_V1 if pretrained else None)
