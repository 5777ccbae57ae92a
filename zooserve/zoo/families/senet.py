"""SENet: Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018."""

from torch import nn

from ..meta import ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import timm_model, timm_preprocess

PAPER = Paper(title="Squeeze-and-Excitation Networks", authors="Hu, Shen, Sun", venue="CVPR 2018", arxiv="1709.01507")
TAG = "legacy_senet154.in1k"


@register_model(
    ModelInfo(
        name="senet154",
        family="senet",
        seed_name="SENet",
        paper=PAPER,
        variant="SENet-154: SE modules in a modified ResNeXt-152 (64x4d) (Appendix)",
        seed_result="97.749 top-5 is the ILSVRC 2017 winning ensemble (2.251% top-5 error on the test set); the "
        "best single model, SENet-154, reaches 18.68/4.47 error at 224x224",
        source="timm",
        library_id="timm:legacy_senet154",
        fidelity="library",
        preprocess=timm_preprocess(TAG),
        params_note="The paper states no parameter count for SENet-154.",
        pretrained=Pretrained(library="timm", ref=TAG),
    )
)
def senet154(pretrained: bool = False) -> nn.Module:
    """SENet-154 as described in the paper's appendix (the authors' ILSVRC 2017 network)."""
    return timm_model(TAG, pretrained)
