"""Helpers for the families a library ships: each library's published evaluation transform, and its models.

Preprocessing is read from the library itself wherever it publishes it: torchvision's weights transforms,
timm's pretrained configs, and pytorchcv's model table (input size and resize factor per model) with the
validation transform of its repository (osmr/imgclsmob ``imagenet_val_transform``: shorter side to
``ceil(size / factor)``, bilinear, centre crop, ImageNet mean and std).
"""

from __future__ import annotations

import math

import timm
from torch import nn
from torchvision.models import WeightsEnum
from torchvision.transforms._presets import ImageClassification

from ..meta import Preprocess
from ..pretrained import load_pytorchcv_weights, pytorchcv_table_row


def torchvision_preprocess(weights: WeightsEnum | None = None) -> Preprocess:
    """The evaluation transform torchvision publishes with a set of weights (resize, crop, mean/std); without
    weights, its default ``ImageClassification`` transform (256 -> 224, bilinear, ImageNet statistics)."""
    transform = weights.transforms() if weights is not None else ImageClassification(crop_size=224)
    crop, resize = transform.crop_size[0], transform.resize_size[0]
    return Preprocess(
        input_size=(3, crop, crop),
        crop_pct=crop / resize,
        resize_size=resize,
        interpolation=transform.interpolation.value,
        antialias=bool(transform.antialias),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
    )


def timm_preprocess(pretrained_tag: str | None = None) -> Preprocess:
    """The data config of a timm pretrained tag such as ``inception_v4.tf_in1k`` (timm's own defaults without
    one); timm resizes the shorter side to floor(size / crop_pct), which ``Preprocess`` does by default."""
    if pretrained_tag:
        cfg = timm.data.resolve_data_config(pretrained_cfg=timm.get_pretrained_cfg(pretrained_tag).to_dict())
    else:  # timm asks for something to resolve; the default input size is its own default anyway
        cfg = timm.data.resolve_data_config(args={"input_size": (3, 224, 224)})
    if cfg["crop_mode"] != "center":
        raise ValueError(f"{pretrained_tag}: timm crop mode {cfg['crop_mode']!r} is not supported")
    return Preprocess(
        input_size=tuple(cfg["input_size"]),
        crop_pct=cfg["crop_pct"],
        interpolation=cfg["interpolation"],
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
    )


def pytorchcv_preprocess(name: str | None = None, default_size: int = 224) -> Preprocess:
    """pytorchcv's ImageNet validation transform for the model ``name`` of its table (input size and resize
    factor from there; 224 and 0.875, its defaults, for a model without published weights)."""
    row = pytorchcv_table_row(name) if name else None
    size = int(row["img_size"]) if row else default_size
    factor = float(row["img_scale"]) if row else 0.875
    return Preprocess(input_size=(3, size, size), crop_pct=factor, resize_size=math.ceil(size / factor))


def timm_model(pretrained_tag: str, pretrained: bool, **kwargs) -> nn.Module:
    return timm.create_model(pretrained_tag, pretrained=pretrained, **kwargs)


def pytorchcv_model(name: str, pretrained: bool, **kwargs) -> nn.Module:
    """pytorchcv's model ``name``; its published weights are read from pytorchcv's own cache, or fetched
    by pytorchcv's own download code when absent (``zooserve.zoo.pretrained``)."""
    from pytorchcv.model_provider import get_model

    model = get_model(name, pretrained=False, **kwargs)
    return load_pytorchcv_weights(model, name) if pretrained else model


PYTORCHCV_IMAGENET = pytorchcv_preprocess()
# pytorchcv's CIFAR validation transform (imgclsmob ``cifar10_val_transform``, also used for CIFAR-100): the
# 32x32 image as it is, normalized with these statistics; a photograph is first squeezed to 32x32
PYTORCHCV_CIFAR = Preprocess(
    input_size=(3, 32, 32), crop_pct=1.0, crop_mode="squash",
    mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010),
)
