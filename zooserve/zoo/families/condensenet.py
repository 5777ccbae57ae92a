"""CondenseNet: Huang, Liu, van der Maaten, Weinberger, "CondenseNet: An Efficient DenseNet using Learned
Group Convolutions", CVPR 2018."""

from torch import nn

from ..meta import Figure, ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import pytorchcv_model, pytorchcv_preprocess

PAPER = Paper(
    title="CondenseNet: An Efficient DenseNet using Learned Group Convolutions",
    authors="Huang, Liu, van der Maaten, Weinberger",
    venue="CVPR 2018",
    arxiv="1711.09224",
)


@register_model(
    ModelInfo(
        name="condensenet74_c4_g4",
        family="condensenet",
        seed_name="CondenseNet",
        paper=PAPER,
        variant="CondenseNet-74 (G = C = 4), the condensed (pruned) network used at test time",
        seed_result="73.8/91.7 is CondenseNet with G = C = 4 (ImageNet comparison table, 26.2/8.3 error)",
        source="pytorchcv",
        library_id="pytorchcv:condensenet74_c4_g4",
        fidelity="library",
        preprocess=pytorchcv_preprocess("condensenet74_c4_g4"),
        paper_params=Figure(value=4.8e6, where="ImageNet comparison table (CondenseNet G = C = 4 row)"),
        paper_macs=Figure(value=529e6, where="ImageNet comparison table (FLOPs)"),
        pretrained=Pretrained(library="pytorchcv", ref="condensenet74_c4_g4"),
    )
)
def condensenet74_c4_g4(pretrained: bool = False) -> nn.Module:
    """CondenseNet-74 after condensation: learned group convolutions become index-select + group conv."""
    return pytorchcv_model("condensenet74_c4_g4", pretrained)
