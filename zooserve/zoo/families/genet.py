"""GeNet: Xie & Yuille, "Genetic CNN", ICCV 2017 (arXiv:1703.01513v1).

A genetic algorithm searches the connections inside each stage of a plain CNN (Sec. 3.1). Stage s has K_s
ordered nodes; a binary string of K_s(K_s - 1)/2 bits, written per target node as "1-01-100", says which
earlier node feeds which later one. A node sums its inputs and applies conv -> BN -> ReLU. Every stage also has
a default input node (a conv on the previous stage's output, feeding the nodes without predecessors) and a
default output node (summing the nodes without successors, then a conv); a node with no edge at all is dropped,
and a stage with no edge at all is a single conv. For ImageNet (Sec. 4.4) the three learned CIFAR-10 stages
replace VGGNet's last three stages (widths 256, 512, 512) after its first two.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.ops.misc import Conv2dNormActivation

from ..meta import Figure, ModelInfo, Paper, imagenet_preprocess
from ..registry import register_model

PAPER = Paper(title="Genetic CNN", authors="Xie, Yuille", venue="ICCV 2017", arxiv="1703.01513")

# Figure 5 (stages with K = 3, 4, 5 nodes): GeNet #1 is the best structure of the CIFAR-10 search (Table 2);
# GeNet #2 differs in stage 2 only and is the better ImageNet network (Table 4)
GENET_1 = ("1-01", "0-01-100", "0-11-101-0001")
GENET_2 = ("1-01", "1-01-100", "0-11-101-0001")
IMAGENET_WIDTHS = (256, 512, 512)


def decode_stage(code: str) -> tuple[int, list[tuple[int, int]]]:
    """``"1-01-100"`` -> (K = 4, edges [(1, 2), (2, 3), (1, 4)]); the j-th group holds the bits (i, j+1), i <= j."""
    groups = code.split("-")
    if any(len(bits) != j or set(bits) - {"0", "1"} for j, bits in enumerate(groups, start=1)):
        raise ValueError(f"not a GeNet stage code: {code!r}")
    edges = [(i, j) for j, bits in enumerate(groups, start=2) for i, bit in enumerate(bits, start=1) if bit == "1"]
    return len(groups) + 1, edges


def _node(in_ch: int, out_ch: int) -> nn.Module:
    # conv -> BN -> ReLU; 3x3 is inferred for ImageNet (it reproduces the 156M parameters quoted for GeNet-2)
    return Conv2dNormActivation(in_ch, out_ch, kernel_size=3)


class GeneticStage(nn.Module):
    """One encoded stage: the default input node, the connected nodes in order, the default output node."""

    def __init__(self, in_ch: int, out_ch: int, code: str):
        super().__init__()
        num_nodes, edges = decode_stage(code)
        active = sorted({k for edge in edges for k in edge})
        self.preds = {k: [i for i, j in edges if j == k] for k in active}
        self.sinks = [k for k in active if not any(i == k for i, _ in edges)]
        self.input_node = _node(in_ch, out_ch)
        self.nodes = nn.ModuleDict({str(k): _node(out_ch, out_ch) for k in active})
        # a stage without edges degenerates to one conv, so only a connected stage has an output node
        self.output_node = _node(out_ch, out_ch) if active else nn.Identity()
        self.code = code

    def forward(self, x: Tensor) -> Tensor:
        x = self.input_node(x)
        if not self.nodes:
            return x
        outs: dict[int, Tensor] = {}
        for key, node in self.nodes.items():  # ascending node order is a topological order (edges go i < j)
            k = int(key)
            inputs = [outs[i] for i in self.preds[k]] or [x]
            outs[k] = node(sum(inputs[1:], inputs[0]))
        sinks = [outs[k] for k in self.sinks]
        return self.output_node(sum(sinks[1:], sinks[0]))

    def extra_repr(self) -> str:
        return f"code={self.code!r}"


def _vgg_stage(in_ch: int, out_ch: int) -> list[nn.Module]:
    # VGGNet's own layers (conv3 with bias, ReLU; no BN), then its 2x2 max pool
    return [
        nn.Conv2d(in_ch, out_ch, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, 2),
    ]


class GeNet(nn.Module):
    """The ImageNet GeNet of Sec. 4.4: VGG stages 1-2, three GeNet stages, each followed by a pool, VGG's head."""

    def __init__(self, codes: tuple[str, str, str], widths=IMAGENET_WIDTHS, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [*_vgg_stage(3, 64), *_vgg_stage(64, 128)]  # 224 -> 56, 128 channels
        in_ch = 128
        for code, width in zip(codes, widths):
            layers += [GeneticStage(in_ch, width, code), nn.MaxPool2d(2, 2)]  # 56 -> 28 -> 14 -> 7
            in_ch = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_ch * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # the paper names no init ("training follows VGGNet"); He init for convs, N(0, 0.01) for FC layers
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


@register_model(
    ModelInfo(
        name="genet_imagenet",
        family="genet",
        seed_name="GeNet",
        paper=PAPER,
        variant="GeNet #2 for ImageNet (Sec. 4.4, Table 4): VGGNet stages 1-2 (conv3-64 x2, conv3-128 x2), "
        "then the learned stages '1-01', '1-01-100', '0-11-101-0001' (Figure 5) at widths 256/512/512, each "
        "followed by a pool, and VGGNet's fc 4096-4096-1000",
        seed_result="72.13/90.26 is GeNet #2, single model on ImageNet val (Table 4: 27.87/9.74 top-1/top-5 "
        "error)",
        source="ours",
        fidelity="reconstructed",
        fidelity_note="From the paper: the stage encoding and node op (conv-BN-ReLU, summed inputs, default "
        "input/output nodes, Sec. 3.1), GeNet #2's codes (Figure 5), the ImageNet layout (224 input, VGG "
        "stages 1-2, stage widths 256/512/512, a pool after each stage, VGG's fc head with dropout 0.5; "
        "Sec. 4.4). Inferred: 3x3 kernels in the GeNet stages (reproduces the 156M quoted by Real et al.), "
        "2x2/2 max pools after the stages (as in VGG), no BN in the two VGG stages, the initialization.",
        preprocess=imagenet_preprocess(224, 0.875),
        paper_params=Figure(
            value=156e6,
            where="Real et al., 'Regularized Evolution for Image Classifier Architecture Search' (AmoebaNet), "
            "AAAI 2019, Table 2, row 'GeNet-2 (Xie and Yuille 2017)'; the GeNet paper states no count",
        ),
        params_note="Computed from Sec. 4.4 with 3x3 convs: VGG part 259,776 weights, stages 2,654,208 + "
        "12,976,128 + 16,515,072, fc 123,633,664 (25088*4096 + 4096^2 + 4096*1000): 156,038,848 weights; "
        "with biases and BN the built model has 156,064,296 (156.1M).",
        heavy=True,
    )
)
def genet_imagenet(pretrained: bool = False) -> nn.Module:
    """GeNet #2 on ImageNet: Sec. 4.4 with the Figure 5 (right) stage codes; Table 4."""
    return GeNet(GENET_2)
