"""Small helpers for the families that a library ships: preprocessing read from the library's own config."""

from __future__ import annotations

import timm
from torch import nn
from torchvision.models import WeightsEnum

from ..meta import Preprocess, imagenet_preprocess


def torchvision_preprocess(weights: WeightsEnum) -> Preprocess:
    """The evaluation transform torchvision publishes with a set of weights (resize, crop, mean/std)."""
    transform = weights.transforms()
    crop = transform.crop_size[0]
    return Preprocess(
        input_size=(3, crop, crop),
        crop_pct=crop / transform.resize_size[0],
        interpolation=transform.interpolation.value,
        mean=tuple(transform.mean),
        std=tuple(transform.std),
    )


def timm_preprocess(pretrained_tag: str) -> Preprocess:
    """The data config of a timm pretrained tag such as ``inception_v4.tf_in1k``."""
    cfg = timm.get_pretrained_cfg(pretrained_tag).to_dict()
    return Preprocess(
        input_size=tuple(cfg["input_size"]),
        crop_pct=cfg["crop_pct"],
        interpolation=cfg["interpolation"],
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
    )


def timm_model(pretrained_tag: str, pretrained: bool, **kwargs) -> nn.Module:
    return timm.create_model(pretrained_tag, pretrained=pretrained, **kwargs)


def pytorchcv_model(name: str, pretrained: bool, **kwargs) -> nn.Module:
    from pytorchcv.model_provider import get_model

    return get_model(name, pretrained=pretrained, **kwargs)


PYTORCHCV_IMAGENET = imagenet_preprocess(224, 0.875)
