"""NASNet: Zoph, Vasudevan, Shlens, Le, "Learning Transferable Architectures for Scalable Image
Recognition", CVPR 2018."""

from torch import nn

from ..meta import Figure, ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import timm_model, timm_preprocess

PAPER = Paper(
    title="Learning Transferable Architectures for Scalable Image Recognition",
    authors="Zoph, Vasudevan, Shlens, Le",
    venue="CVPR 2018",
    arxiv="1707.07012",
)
TAG = "nasnetalarge.tf_in1k"


@register_model(
    ModelInfo(
        name="nasnet_a_large",
        family="nasnet",
        seed_name="NasNet",
        paper=PAPER,
        variant="NASNet-A (6 @ 4032) at 331x331",
        seed_result="82.7/96.2 is NASNet-A (6 @ 4032), single crop (Table 2)",
        source="timm",
        library_id="timm:nasnetalarge",
        fidelity="library",
        preprocess=timm_preprocess(TAG),
        paper_params=Figure(value=88.9e6, where="Table 2"),
        paper_macs=Figure(value=23.8e9, where="Table 2"),
        pretrained=Pretrained(library="timm", ref=TAG),
    )
)
def nasnet_a_large(pretrained: bool = False) -> nn.Module:
    """NASNet-A Large: N = 6 normal cells per stack, 4032 filters in the penultimate layer (Figure 4 cells)."""
    return timm_model(TAG, pretrained)
