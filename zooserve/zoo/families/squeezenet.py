"""SqueezeNet: Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB
model size", arXiv 2016 (ICLR 2017 submission).

The seed's 60.4/82.5 is SqueezeNet with simple bypass (Table 3), which no library ships: torchvision's
``squeezenet1_0`` is the vanilla network. We add the paper's identity bypass around Fire modules 3, 5, 7
and 9 (Section 6, Figure 2 middle) to torchvision's network, reusing its Fire modules.
"""

import torch
from torch import nn
from torchvision.models import SqueezeNet1_0_Weights
from torchvision.models import squeezenet1_0 as tv_squeezenet1_0

from ..meta import Figure, ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import torchvision_preprocess

PAPER = Paper(
    title="SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size",
    authors="Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer",
    venue="arXiv 2016",
    arxiv="1602.07360",
)
PREPROCESS = torchvision_preprocess(SqueezeNet1_0_Weights.IMAGENET1K_V1)
PARAMS = Figure(value=1_248_424, where="Table 1 (total parameters)")
# indices in torchvision's ``features`` of fire3, fire5, fire7 and fire9, whose input and output widths match
BYPASSED_FIRES = (4, 7, 9, 12)


class SimpleBypass(nn.Module):
    """y = fire(x) + x: the identity bypass of Section 6."""

    def __init__(self, fire: nn.Module):
        super().__init__()
        self.fire = fire

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fire(x) + x


@register_model(
    ModelInfo(
        name="squeezenet_bypass",
        family="squeezenet",
        seed_name="squeezenet",
        paper=PAPER,
        variant="SqueezeNet 1.0 with simple bypass around fire3, fire5, fire7, fire9 (Table 3, Figure 2 middle)",
        seed_result="60.4/82.5 is SqueezeNet with simple bypass (Table 3)",
        source="ours",
        library_id="torchvision.models.squeezenet1_0 + identity bypasses",
        fidelity="paper",
        preprocess=PREPROCESS,
        paper_params=PARAMS,
    )
)
def squeezenet_bypass(pretrained: bool = False) -> nn.Module:
    """Table 1's SqueezeNet with the simple bypass connections of Section 6 (no extra parameters)."""
    model = tv_squeezenet1_0(weights=None)
    for index in BYPASSED_FIRES:
        model.features[index] = SimpleBypass(model.features[index])
    return model


@register_model(
    ModelInfo(
        name="squeezenet1_0",
        family="squeezenet",
        paper=PAPER,
        variant="Vanilla SqueezeNet 1.0 (Table 1, Figure 2 left), 57.5/80.3 in Table 3",
        source="torchvision",
        library_id="torchvision.models.squeezenet1_0",
        fidelity="library",
        preprocess=PREPROCESS,
        paper_params=PARAMS,
        pretrained=Pretrained(library="torchvision", ref="SqueezeNet1_0_Weights.IMAGENET1K_V1"),
    )
)
def squeezenet1_0(pretrained: bool = False) -> nn.Module:
    """Vanilla SqueezeNet of Table 1."""
    return tv_squeezenet1_0(weights=SqueezeNet1_0_Weights.IMAGENET1K_V1 if pretrained else None)
