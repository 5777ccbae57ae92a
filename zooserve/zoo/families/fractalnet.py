"""FractalNet: Larsson, Maire, Shakhnarovich, "FractalNet: Ultra-Deep Neural Networks without Residuals",
ICLR 2017."""

from torch import nn

from ..meta import Figure, ModelInfo, Paper, cifar_preprocess
from ..registry import register_model
from ._library import pytorchcv_model

PAPER = Paper(
    title="FractalNet: Ultra-Deep Neural Networks without Residuals",
    authors="Larsson, Maire, Shakhnarovich",
    venue="ICLR 2017",
    arxiv="1605.07648",
)


@register_model(
    ModelInfo(
        name="fractalnet_cifar100",
        family="fractalnet",
        seed_name="FractalNet",
        paper=PAPER,
        variant="FractalNet for CIFAR-100: 5 blocks of C = 3 columns (20 layers), widths 64-128-256-512-512, "
        "local and global drop-path (Section 4, Table 1)",
        seed_result="75.8/92.61 is the ImageNet FractalNet-34 (Table 2, 24.12/7.39 error); no library ships it, "
        "so we serve the paper's CIFAR-100 network (Table 1: 22.49% error with augmentation)",
        source="pytorchcv",
        library_id="pytorchcv:fractalnet_cifar100",
        fidelity="library",
        fidelity_note="The seed row's ImageNet model is not in any library; this is the paper's CIFAR-100 model.",
        label_set="cifar-100",
        preprocess=cifar_preprocess("cifar-100"),
        paper_params=Figure(value=38.6e6, where="Table 1 ('FractalNet (20 layers, 38.6M params)')"),
        params_tolerance=0.13,
        params_note="pytorchcv's 20-layer network has 33.8M parameters: 5 blocks of 7 3x3 convolutions "
        "(1 + 2 + 4 in three columns) at the paper's widths sum to 33.8M; how the paper reaches 38.6M is not "
        "stated",
    )
)
def fractalnet_cifar100(pretrained: bool = False) -> nn.Module:
    """The CIFAR FractalNet of Section 4 (B = 5, C = 3), Table 1."""
    return pytorchcv_model("fractalnet_cifar100", pretrained)
