"""Inception v3, Inception-v4, Inception-ResNet-v2 and their ensemble.

- Szegedy, Vanhoucke, Ioffe, Shlens, Wojna, "Rethinking the Inception Architecture for Computer Vision",
  CVPR 2016.
- Szegedy, Ioffe, Vanhoucke, Alemi, "Inception-v4, Inception-ResNet and the Impact of Residual Connections
  on Learning", AAAI 2017.
"""

import math

import torch
from torch import nn
from torchvision.models import Inception_V3_Weights
from torchvision.models import inception_v3 as tv_inception_v3

from ..meta import ModelInfo, Paper, Pretrained
from ..registry import register_model
from ._library import timm_model, timm_preprocess, torchvision_preprocess

RETHINKING = Paper(
    title="Rethinking the Inception Architecture for Computer Vision",
    authors="Szegedy, Vanhoucke, Ioffe, Shlens, Wojna",
    venue="CVPR 2016",
    arxiv="1512.00567",
)
INCEPTION_V4 = Paper(
    title="Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
    authors="Szegedy, Ioffe, Vanhoucke, Alemi",
    venue="AAAI 2017",
    arxiv="1602.07261",
)
NO_PARAMS_STATED = "The paper states no parameter count for this network."
V4_TAG = "inception_v4.tf_in1k"
IRV2_TAG = "inception_resnet_v2.tf_in1k"


@register_model(
    ModelInfo(
        name="inception_v3",
        family="inception",
        seed_name="Inceptionv3",
        paper=RETHINKING,
        variant="Inception-v3 (Inception-v2 of Table 3 with BN-auxiliary, RMSProp, label smoothing, "
        "factorized 7x7); inference network without the auxiliary head",
        seed_result="82.8/96.42 is the ensemble of 4 models with 144 crops (Table 5: 17.2 top-1 error on validation, "
        "3.58 top-5 on the test set, 3.46 on validation); one model with 144 crops reaches 18.77/4.2 (Table 4)",
        source="torchvision",
        library_id="torchvision.models.inception_v3",
        fidelity="library",
        preprocess=torchvision_preprocess(Inception_V3_Weights.IMAGENET1K_V1),
        params_note=NO_PARAMS_STATED,
        pretrained=Pretrained(library="torchvision", ref="Inception_V3_Weights.IMAGENET1K_V1"),
    )
)
def inception_v3(pretrained: bool = False) -> nn.Module:
    """Inception-v3, the network of Table 1 with the improvements listed in Table 3's last row."""
    weights = Inception_V3_Weights.IMAGENET1K_V1 if pretrained else None
    return tv_inception_v3(weights=weights, aux_logits=False, init_weights=not pretrained)


def _v4_info(name: str, seed_name: str, variant: str, seed_result: str, tag: str) -> ModelInfo:
    return ModelInfo(
        name=name,
        family="inception",
        seed_name=seed_name,
        paper=INCEPTION_V4,
        variant=variant,
        seed_result=seed_result,
        source="timm",
        library_id=f"timm:{tag.split('.')[0]}",
        fidelity="library",
        preprocess=timm_preprocess(tag),
        params_note=NO_PARAMS_STATED,
        pretrained=Pretrained(library="timm", ref=tag),
    )


@register_model(
    _v4_info(
        "inception_v4",
        "Inceptionv4",
        "Inception-v4 (Figures 3-9)",
        "82.3/96.2 is one Inception-v4 evaluated on 144 crops (Table 4, 17.7/3.8 error on validation)",
        V4_TAG,
    )
)
def inception_v4(pretrained: bool = False) -> nn.Module:
    """Inception-v4: the stem of Figure 3, Inception-A/B/C (Figures 4, 5, 6), reductions (Figures 7, 8)."""
    return timm_model(V4_TAG, pretrained)


@register_model(
    _v4_info(
        "inception_resnet_v2",
        "Inception-ResNet-v2",
        "Inception-ResNet-v2 (Figures 3, 16-19 with the scaled residuals of Figure 20)",
        "82.4/96.3: one Inception-ResNet-v2 evaluated on 144 crops (Table 4)",
        IRV2_TAG,
    )
)
def inception_resnet_v2(pretrained: bool = False) -> nn.Module:
    """Inception-ResNet-v2: stem of Figure 3, Inception-ResNet-A/B/C of Figures 16, 17, 19, reductions 7, 18."""
    return timm_model(IRV2_TAG, pretrained)


class ProbabilityEnsemble(nn.Module):
    """Averages its members' class probabilities, as the paper's ensembles do.

    It returns the log of the average probabilities, so a softmax over its output gives that average
    back and every consumer of logits can treat it like any single network.
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_probs = torch.stack([member(x).log_softmax(dim=-1) for member in self.members])
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))


@register_model(
    ModelInfo(
        name="inception_v4_resnet_v2_ensemble",
        family="inception",
        seed_name="Inceptionv4 + Inception-ResNet-v2",
        paper=INCEPTION_V4,
        variant="One Inception-v4 and one Inception-ResNet-v2, class probabilities averaged",
        seed_result="83.5/96.92 is the ensemble of one Inception-v4 and three Inception-ResNet-v2 with 144 crops "
        "(Table 5: 16.5 top-1 error on validation, 3.08 top-5 on the test set). Served instead: one of each on "
        "one centre crop. The three Inception-ResNet-v2 of the paper were never published; timm has one trained "
        "as in the paper (tf_in1k) and one with ensemble adversarial training (tf_ens_adv_in1k, another recipe, "
        "so not a stand-in for the paper's second and third), and the 144-crop evaluation is not a serving path. "
        "Both members see Inception-v4's published transform (299 crop of 341, bicubic, mean/std 0.5); "
        "Inception-ResNet-v2's own crops 299 of 333.",
        source="timm",
        library_id=f"timm:{V4_TAG.split('.')[0]} + timm:{IRV2_TAG.split('.')[0]}",
        fidelity="library",
        preprocess=timm_preprocess(V4_TAG),
        params_note=NO_PARAMS_STATED,
        pretrained=Pretrained(library="timm", ref=f"{V4_TAG} + {IRV2_TAG}"),
        heavy=True,
    )
)
def inception_v4_resnet_v2_ensemble(pretrained: bool = False) -> nn.Module:
    """The ensemble of Table 5, reduced to one network of each kind (both take 299x299, mean/std 0.5)."""
    return ProbabilityEnsemble([inception_v4(pretrained), inception_resnet_v2(pretrained)])
