"""RiR: Targ, Almeida, Lyman, "Resnet in Resnet: Generalizing Residual Architectures", ICLR Workshop 2016."""

from torch import nn

from ..meta import ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import PYTORCHCV_CIFAR, pytorchcv_model

PAPER = Paper(
    title="Resnet in Resnet: Generalizing Residual Architectures",
    authors="Targ, Almeida, Lyman",
    venue="ICLR Workshop 2016",
    arxiv="1603.08029",
)


@register_model(
    ModelInfo(
        name="rir_cifar10",
        family="rir",
        seed_name="RiR",
        paper=PAPER,
        variant="18-layer + wide RiR for CIFAR-10 (the paper's best network; the paper reports only CIFAR)",
        seed_result="The seed gives no ImageNet figure: the paper evaluates on CIFAR-10 and CIFAR-100 only",
        source="pytorchcv",
        library_id="pytorchcv:rir_cifar10",
        fidelity="library",
        label_set="cifar-10",
        preprocess=PYTORCHCV_CIFAR,
        pretrained=Pretrained(library="pytorchcv", ref="rir_cifar10"),
        params_note="The built network's count is reported as measured; the paper's table is not reproduced here.",
    )
)
def rir_cifar10(pretrained: bool = False) -> nn.Module:
    """The wide 18-layer ResNet Init network with generalized residual blocks (Section 3)."""
    return pytorchcv_model("rir_cifar10", pretrained)
