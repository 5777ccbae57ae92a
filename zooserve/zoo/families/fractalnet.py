"""FractalNet: Larsson, Maire, Shakhnarovich, "FractalNet: Ultra-Deep Neural Networks without Residuals",
ICLR 2017 (arXiv 1605.07648).

A fractal block of C columns expands f_1(z) = conv(z), f_{C+1}(z) = join(f_C(f_C(z)), conv(z)) (Section 2):
column j has 2^(j-1) convolutions, each conv is 3x3 conv -> BN -> ReLU, and every join is the element-wise
mean of the columns that end at that depth, after which they all continue from the joined tensor. There
are no residual or pass-through paths. Drop-path (local and global) is training-only and left out.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops.misc import Conv2dNormActivation

from ..meta import Figure, ModelInfo, Paper
from ..registry import register_model
from ._library import PYTORCHCV_CIFAR, pytorchcv_model, torchvision_preprocess

PAPER = Paper(
    title="FractalNet: Ultra-Deep Neural Networks without Residuals",
    authors="Larsson, Maire, Shakhnarovich",
    venue="ICLR 2017",
    arxiv="1605.07648",
)


class FractalBlock(nn.Module):
    """C columns over 2^(C-1) depth levels; column j (0-based) has a conv at every 2^j-th level, and the
    columns with a conv at a level are joined there by their mean."""

    def __init__(self, c_in: int, c_out: int, columns: int):
        super().__init__()
        self.columns = columns
        self.levels = nn.ModuleList()
        for level in range(1, 2 ** (columns - 1) + 1):
            self.levels.append(nn.ModuleList(
                Conv2dNormActivation(c_in if level == 2**j else c_out, c_out, 3, bias=False)
                for j in self._active(level)
            ))

    def _active(self, level: int) -> list[int]:
        return [j for j in range(self.columns) if level % 2**j == 0]

    def forward(self, x: Tensor) -> Tensor:
        inputs = [x] * self.columns  # what each column's next conv reads
        for level, convs in enumerate(self.levels, 1):
            active = self._active(level)
            joined = torch.stack([conv(inputs[j]) for j, conv in zip(active, convs)]).mean(0)
            for j in active:
                inputs[j] = joined
        return joined


class FractalNet34(nn.Module):
    """The ImageNet FractalNet of Section 4.3: ResNet-34's first layer (7x7/2 conv, BN, ReLU, 3x3/2 max-pool)
    and last layer (global average pool, FC), between them B = 4 fractal blocks of C = 4 columns with
    64, 128, 256, 512 filters, 2x2 max-pooling between blocks. Deepest path 1 + 4 x 8 + 1 = 34 layers."""

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512), columns: int = 4, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [Conv2dNormActivation(3, 64, 7, stride=2, bias=False), nn.MaxPool2d(3, 2, 1)]
        c_in = 64
        for i, width in enumerate(widths):
            if i:
                layers.append(nn.MaxPool2d(2))
            layers.append(FractalBlock(c_in, width, columns))
            c_in = width
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).mean((2, 3)))


@register_model(
    ModelInfo(
        name="fractalnet34",
        family="fractalnet",
        seed_name="FractalNet",
        paper=PAPER,
        variant="FractalNet-34, the ImageNet network of Section 4.3 (B = 4 blocks of C = 4 columns)",
        seed_result="75.8/92.61 is FractalNet-34 on the ImageNet validation set with 10-crop testing (Table 2: "
        "24.12/7.39 error, against ResNet-34 C's 24.19/7.40); this serves one centre crop",
        source="ours",
        fidelity="reconstructed",
        fidelity_note="From the paper: the fractal expansion rule, 3x3 conv + BN + ReLU as the base layer, mean "
        "joins, no residuals (Section 2); for ImageNet, ResNet-34's first and last layers around 4 blocks of "
        "4 columns with filters doubling from 64 (Section 4.3, read from secondary quotes of it; the paragraph "
        "itself could not be re-read here). Inferred: 2x2 max-pooling between blocks (as in the paper's CIFAR "
        "networks, Section 3), no conv biases (BN follows every conv), no pooling after the last block, "
        "224x224 input with the standard ImageNet preprocessing. No ImageNet code or weights were published "
        "(the authors' code is CIFAR-only Caffe).",
        preprocess=torchvision_preprocess(),
        params_note="The paper states no parameter or mult-add count for FractalNet-34; built: 41.4M "
        "parameters and 6.36G mult-adds at 224x224.",
    )
)
def fractalnet34(pretrained: bool = False) -> nn.Module:
    """FractalNet-34 for ImageNet (Section 4.3, Table 2)."""
    return FractalNet34()


@register_model(
    ModelInfo(
        name="fractalnet_cifar100",
        family="fractalnet",
        paper=PAPER,
        variant="FractalNet for CIFAR-100: 5 blocks of C = 3 columns (20 layers), widths 64-128-256-512-512, "
        "local and global drop-path (Section 4, Table 1)",
        seed_result="not the seed row (the seed quotes the ImageNet FractalNet-34, fractalnet34); Table 1: "
        "22.49% CIFAR-100 error with augmentation",
        source="pytorchcv",
        library_id="pytorchcv:fractalnet_cifar100",
        fidelity="library",
        label_set="cifar-100",
        preprocess=PYTORCHCV_CIFAR,
        paper_params=Figure(value=38.6e6, where="Table 1 ('FractalNet (20 layers, 38.6M params)')"),
        params_tolerance=0.13,
        params_note="pytorchcv's 20-layer network has 33.8M parameters: 5 blocks of 7 3x3 convolutions "
        "(1 + 2 + 4 in three columns) at the paper's widths; the paper's Table 1 says 38.6M without saying how",
    )
)
def fractalnet_cifar100(pretrained: bool = False) -> nn.Module:
    """The CIFAR FractalNet of Section 4 (B = 5, C = 3), Table 1."""
    return pytorchcv_model("fractalnet_cifar100", pretrained)
