"""Stochastic Depth: Huang, Sun, Liu, Sedra, Weinberger, "Deep Networks with Stochastic Depth", ECCV 2016.

A ResNet trained by dropping whole residual blocks at random. At test time the paper keeps every block and
weights each residual branch by its survival probability (Eq. 5). timm's ``DropPath`` implements the
equivalent "inverted" form: during training it divides a surviving branch by its survival probability,
so at test time the network is the plain full-depth ResNet. We keep the paper's drop schedule on the
model so it can be fine-tuned as the paper trains it.
"""

from timm.layers import DropPath
from torch import nn

from ..meta import ModelInfo, Paper
from ..registry import register_model
from ._library import timm_model, timm_preprocess

PAPER = Paper(
    title="Deep Networks with Stochastic Depth",
    authors="Huang, Sun, Liu, Sedra, Weinberger",
    venue="ECCV 2016",
    arxiv="1603.09382",
)
FINAL_SURVIVAL = 0.5  # p_L of the linear decay rule (Section 3, Eq. 4)


def apply_linear_decay(model: nn.Module, final_survival: float = FINAL_SURVIVAL) -> nn.Module:
    """Give residual block l of L the drop probability (l / L) * (1 - p_L), the paper's Eq. 4."""
    blocks = [block for stage in (model.layer1, model.layer2, model.layer3, model.layer4) for block in stage]
    for index, block in enumerate(blocks, start=1):
        block.drop_path = DropPath(index / len(blocks) * (1 - final_survival))
    return model


@register_model(
    ModelInfo(
        name="stochastic_depth_resnet152",
        family="stochastic_depth",
        seed_name="Stochastic Depth ResNet",
        paper=PAPER,
        variant="ResNet-152 trained with stochastic depth, linear decay to p_L = 0.5 (Section 4, ImageNet)",
        seed_result="78.02 is 100 - 21.98, the ImageNet validation top-1 error of the 152-layer network trained "
        "with stochastic depth (Section 4, ImageNet)",
        source="timm",
        library_id="timm:resnet152 with timm.layers.DropPath per block",
        fidelity="library",
        fidelity_note="Test-time rule: timm's inverted scaling (branches scaled by 1/p_l in training), "
        "equivalent to the paper's Eq. 5 weighting; block l of L drops with probability (l/L)(1 - 0.5).",
        preprocess=timm_preprocess(),
        params_note="The paper states no parameter count; ResNet-152's is that of the ResNet paper's network.",
    )
)
def stochastic_depth_resnet152(pretrained: bool = False) -> nn.Module:
    """ResNet-152 (ResNet paper, Table 1) with the drop schedule of Section 3 (linear decay, p_L = 0.5)."""
    return apply_linear_decay(timm_model("resnet152", pretrained=False))
