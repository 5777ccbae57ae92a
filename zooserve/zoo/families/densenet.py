"""DenseNet: Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional Networks", CVPR 2017."""

from torch import nn
from torchvision.models import DenseNet

from ..meta import ModelInfo, Paper
from ..registry import register_model
from ._library import torchvision_preprocess

PAPER = Paper(
    title="Densely Connected Convolutional Networks",
    authors="Huang, Liu, van der Maaten, Weinberger",
    venue="CVPR 2017",
    arxiv="1608.06993",
)


@register_model(
    ModelInfo(
        name="densenet264",
        family="densenet",
        seed_name="DenseNet",
        paper=PAPER,
        variant="DenseNet-264 (k = 32, DenseNet-BC, dense blocks of 6, 12, 64, 48 layers; Table 1)",
        seed_result="79.2/94.71 is DenseNet-264 with 10-crop testing (Table 3, 20.80/5.29 error); single crop "
        "22.15/6.12",
        source="torchvision",
        library_id="torchvision.models.DenseNet(growth_rate=32, block_config=(6, 12, 64, 48))",
        fidelity="library",
        preprocess=torchvision_preprocess(),
        params_note="The paper states no parameter count for DenseNet-264 in its text or tables.",
    )
)
def densenet264(pretrained: bool = False) -> nn.Module:
    """DenseNet-264 of Table 1, built with torchvision's DenseNet class (torchvision ships no 264 builder)."""
    return DenseNet(growth_rate=32, block_config=(6, 12, 64, 48), num_init_features=64)
