"""PolyNet: Zhang, Li, Loy, Lin, "PolyNet: A Pursuit of Structural Diversity in Very Deep Networks", CVPR 2017."""

from torch import nn

from ..meta import ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import pytorchcv_model, pytorchcv_preprocess

PAPER = Paper(
    title="PolyNet: A Pursuit of Structural Diversity in Very Deep Networks",
    authors="Zhang, Li, Loy, Lin",
    venue="CVPR 2017",
    arxiv="1611.05725",
)


@register_model(
    ModelInfo(
        name="polynet",
        family="polynet",
        seed_name="PolyNet",
        paper=PAPER,
        variant="Very Deep PolyNet: an Inception-ResNet-v2-style stem and three stages of PolyInception "
        "modules, the paper's deepest network",
        seed_result="82.64/96.55 is the Very Deep PolyNet with multi-crop testing on the validation set (17.36/3.45 "
        "error, the authors' README and abstract); single-crop it reaches 18.71/4.25",
        source="pytorchcv",
        library_id="pytorchcv:polynet",
        fidelity="library",
        preprocess=pytorchcv_preprocess("polynet"),
        pretrained=Pretrained(library="pytorchcv", ref="polynet"),
        params_note="The paper states no parameter count for the Very Deep PolyNet.",
        heavy=True,
    )
)
def polynet(pretrained: bool = False) -> nn.Module:
    """Very Deep PolyNet at 331x331, as pytorchcv ports it from the authors' release."""
    return pytorchcv_model("polynet", pretrained)
