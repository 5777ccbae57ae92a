"""PNASNet: Liu et al., "Progressive Neural Architecture Search", ECCV 2018."""

from torch import nn

from ..meta import Figure, ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import timm_model, timm_preprocess

PAPER = Paper(
    title="Progressive Neural Architecture Search",
    authors="Liu, Zoph, Neumann, Shlens, Hua, Li, Fei-Fei, Yuille, Huang, Murphy",
    venue="ECCV 2018",
    arxiv="1712.00559",
)
TAG = "pnasnet5large.tf_in1k"


@register_model(
    ModelInfo(
        name="pnasnet5_large",
        family="pnasnet",
        seed_name="PNasNet",
        paper=PAPER,
        variant="PNASNet-5 in the large setting (N = 4, F = 216) at 331x331",
        seed_result="82.9/96.2 is PNASNet-5 in the large setting, single crop (ImageNet large-setting table)",
        source="timm",
        library_id="timm:pnasnet5large",
        fidelity="library",
        preprocess=timm_preprocess(TAG),
        paper_params=Figure(value=86.1e6, where="ImageNet large-setting table"),
        paper_macs=Figure(value=25.0e9, where="ImageNet large-setting table"),
        pretrained=Pretrained(library="timm", ref=TAG),
    )
)
def pnasnet5_large(pretrained: bool = False) -> nn.Module:
    """PNASNet-5 Large: the cell found by progressive search (Figure 1), stacked as in NASNet."""
    return timm_model(TAG, pretrained)
