"""GoogLeNet: Szegedy et al., "Going Deeper with Convolutions", CVPR 2015.

torchvision's GoogLeNet adds batch normalization to every convolution, uses 3x3 instead of 5x5
convolutions in the fourth Inception branch, drops the two LocalResponseNorm layers and pools 2x2 after
inception (4e). We build the network of the paper's Table 1 and Figure 3 with torchvision's own
``GoogLeNet`` and ``Inception`` classes, giving them the paper's layers instead.
"""

from torch import nn
from torchvision.models.googlenet import GoogLeNet, Inception, InceptionAux

from ..meta import Figure, ModelInfo, Paper
from ..registry import register_model
from ._library import torchvision_preprocess

PAPER = Paper(
    title="Going Deeper with Convolutions",
    authors="Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke, Rabinovich",
    venue="CVPR 2015",
    arxiv="1409.4842",
)


class _ConvReLU(nn.Sequential):
    """Convolution with bias and ReLU: the 2014 network has no batch normalization."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__(nn.Conv2d(in_channels, out_channels, bias=True, **kwargs), nn.ReLU(inplace=True))


class _PaperInception(Inception):
    """Inception module of Figure 2(b) with the paper's 5x5 convolution in the fourth branch."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, conv_block=None):
        super().__init__(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, conv_block=_ConvReLU)
        self.branch3 = nn.Sequential(
            _ConvReLU(in_channels, ch5x5red, kernel_size=1), _ConvReLU(ch5x5red, ch5x5, kernel_size=5, padding=2)
        )


def _local_response_norm() -> nn.LocalResponseNorm:
    # the reference Caffe model's LRN: 5 channels, alpha 1e-4, beta 0.75
    return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75)


@register_model(
    ModelInfo(
        name="googlenet",
        family="googlenet",
        seed_name="GoogleNet",
        paper=PAPER,
        variant="GoogLeNet of Table 1 (inference network: the two auxiliary classifiers are training-only)",
        seed_result="93.33 top-5 is the ILSVRC 2014 entry: an ensemble of 7 networks with 144 crops (Table 3, "
        "6.67% top-5 error); a single network with 1 crop reaches 10.07% top-5 error (Table 3)",
        source="torchvision",
        library_id="torchvision.models.googlenet.GoogLeNet with the paper's layers",
        fidelity="library",
        fidelity_note="torchvision's classes, given the paper's layers: no batch normalization, 5x5 convolutions, "
        "LocalResponseNorm after pool1 and conv3, 3x3/2 max-pool after inception (4e), dropout 0.4",
        preprocess=torchvision_preprocess(),
        paper_params=Figure(value=6.8e6, where="Table 1 (sum of the params column)"),
    )
)
def googlenet(pretrained: bool = False) -> nn.Module:
    """GoogLeNet, Table 1 layer by layer (Figure 3 for the LRN placement)."""
    model = GoogLeNet(
        aux_logits=False, init_weights=True, dropout=0.4, blocks=[_ConvReLU, _PaperInception, InceptionAux]
    )
    model.maxpool1 = nn.Sequential(model.maxpool1, _local_response_norm())
    model.maxpool2 = nn.Sequential(_local_response_norm(), model.maxpool2)
    model.maxpool4 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
    return model
