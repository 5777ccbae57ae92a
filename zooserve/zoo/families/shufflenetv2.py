"""ShuffleNet V2: Ma, Zhang, Zheng, Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN
Architecture Design", ECCV 2018."""

from torch import nn
from torchvision.models import ShuffleNet_V2_X2_0_Weights
from torchvision.models import shufflenet_v2_x2_0 as tv_shufflenet_v2_x2_0

from ..meta import Figure, ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import torchvision_preprocess

PAPER = Paper(
    title="ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
    authors="Ma, Zhang, Zheng, Sun",
    venue="ECCV 2018",
    arxiv="1807.11164",
)


@register_model(
    ModelInfo(
        name="shufflenet_v2_x2_0",
        family="shufflenetv2",
        seed_name="ShuffleNetV2",
        paper=PAPER,
        variant="ShuffleNet v2 2x (Table 5)",
        seed_result="81.44 is the large SE-ShuffleNet v2-164 with residual connections (Table 6, 18.56% error, "
        "12.7 GFLOPs), which no library ships; we serve the largest standard ShuffleNet v2, 2x (25.1% error, "
        "Table 8)",
        source="torchvision",
        library_id="torchvision.models.shufflenet_v2_x2_0",
        fidelity="library",
        fidelity_note="Not the seed's 164-layer SE network (in no library); the 2x network of Table 5.",
        preprocess=torchvision_preprocess(ShuffleNet_V2_X2_0_Weights.IMAGENET1K_V1),
        paper_macs=Figure(value=591e6, where="Table 8 (MFLOPs)"),
        paper_params=Figure(value=7.4e6, where="Table 5 (number of weights, 2x column)"),
        pretrained=Pretrained(library="torchvision", ref="ShuffleNet_V2_X2_0_Weights.IMAGENET1K_V1"),
    )
)
def shufflenet_v2_x2_0(pretrained: bool = False) -> nn.Module:
    """ShuffleNet v2 2x: Table 5's stages at output widths 244, 488, 976 and a 2048-wide last conv."""
    return tv_shufflenet_v2_x2_0(weights=ShuffleNet_V2_X2_0_Weights.IMAGENET1K_V1 if pretrained else None)
