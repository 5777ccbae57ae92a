"""Metadata carried by every registry entry: the paper, the variant, preprocessing, labels, fidelity.

Entries are pydantic models so that a wrong field fails at import time, with the field named.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .seed import seed_rows

Source = Literal["torchvision", "timm", "pytorchcv", "ours"]
Fidelity = Literal["library", "paper", "reconstructed"]
LabelSet = Literal["imagenet-1k", "cifar-10", "cifar-100", "digits"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

NUM_CLASSES = {"imagenet-1k": 1000, "cifar-10": 10, "cifar-100": 100, "digits": 10}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Paper(_Frozen):
    title: str
    authors: str
    venue: str = Field(description="Where and when the paper was published, e.g. 'CVPR 2016'.")
    arxiv: str | None = Field(default=None, description="arXiv identifier, e.g. '1512.03385'.")


class Figure(_Frozen):
    """A number stated in a paper, with where it is stated (table, figure or section)."""

    value: float
    where: str


class Preprocess(_Frozen):
    """How an image becomes the network's input: resize the shorter side, centre-crop, normalize.

    The library-backed entries copy their library's published evaluation transform (torchvision's weights
    transforms, timm's pretrained config, pytorchcv's own), down to the resize size's rounding."""

    input_size: tuple[int, int, int] = Field(description="(channels, height, width) of the input.")
    crop_pct: float = Field(gt=0, le=1, description="crop size / resize size.")
    resize_size: int = Field(
        default=0, ge=0, description="Shorter side before the centre crop; 0: timm's rule, floor(size / crop_pct)."
    )
    crop_mode: Literal["center", "squash"] = Field(
        default="center", description="center: shorter side to resize_size, centre crop; squash: the whole "
        "image resized to the input size (the CIFAR and digits networks)."
    )
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"
    antialias: bool = Field(default=True, description="Antialiased downscaling, as PIL's resize does.")
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @model_validator(mode="before")
    @classmethod
    def _default_resize_size(cls, data):
        if isinstance(data, dict) and not data.get("resize_size") and {"input_size", "crop_pct"} <= data.keys():
            size = data["input_size"][1]
            if data.get("crop_mode", "center") == "center":
                size = math.floor(size / data["crop_pct"])
            data = {**data, "resize_size": size}
        return data  # anything missing is reported by the field validation


def imagenet_preprocess(size: int = 224, crop_pct: float = 0.875, **kwargs) -> Preprocess:
    return Preprocess(input_size=(3, size, size), crop_pct=crop_pct, **kwargs)


def cifar_preprocess(label_set: LabelSet) -> Preprocess:
    """CIFAR networks see the whole image shrunk to 32x32, normalized with the data set's statistics."""
    mean, std = (CIFAR10_MEAN, CIFAR10_STD) if label_set == "cifar-10" else (CIFAR100_MEAN, CIFAR100_STD)
    return Preprocess(input_size=(3, 32, 32), crop_pct=1.0, crop_mode="squash", mean=mean, std=std)


def digits_preprocess() -> Preprocess:
    """Handwritten digits (scikit-learn's 8x8 set, sent as greyscale images) enlarged to 32x32."""
    return Preprocess(input_size=(3, 32, 32), crop_pct=1.0, crop_mode="squash", mean=(0.3,) * 3, std=(0.4,) * 3)


class Pretrained(_Frozen):
    """Published weights that the library's own loading code can fetch (needs the network)."""

    library: Literal["torchvision", "timm", "pytorchcv"]
    ref: str = Field(description="torchvision weights enum member, timm pretrained tag or pytorchcv model name.")


class ModelInfo(_Frozen):
    """Everything the catalog, the archive builder and the gateway know about one architecture."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Registry name: archive, URL and metric label.")
    family: str
    seed_name: str | None = Field(default=None, description="Exact first-column name in the seed table.")
    paper: Paper
    variant: str = Field(description="Which model of the paper this is.")
    seed_result: str | None = Field(
        default=None, description="Which result of the paper the seed's accuracy quotes (ensemble, multi-crop...)."
    )
    source: Source
    library_id: str | None = Field(default=None, description="The library builder or class used.")
    fidelity: Fidelity
    fidelity_note: str | None = None
    label_set: LabelSet = "imagenet-1k"
    preprocess: Preprocess
    paper_params: Figure | None = None
    paper_macs: Figure | None = None
    params_note: str | None = Field(
        default=None, description="Why the built count differs from the paper's, or how a figure was computed."
    )
    params_tolerance: float = Field(
        default=0.05, gt=0, description="Allowed relative gap to paper_params; above 5% needs a params_note."
    )
    macs_tolerance: float = Field(
        default=0.05, gt=0, description="Allowed relative gap to paper_macs; above 5% needs a params_note."
    )
    pretrained: Pretrained | None = None
    heavy: bool = Field(default=False, description="Too large to keep resident beside others on a small machine.")

    @field_validator("seed_name")
    @classmethod
    def _seed_name_in_table(cls, value: str | None) -> str | None:
        if value is not None and value not in seed_rows():
            raise ValueError(f"seed_name {value!r} is not a row of the seed table")
        return value

    @model_validator(mode="after")
    def _loosened_tolerance_is_explained(self) -> "ModelInfo":
        if max(self.params_tolerance, self.macs_tolerance) > 0.05 and not self.params_note:
            raise ValueError(f"{self.name}: a tolerance above 5% needs a params_note saying why")
        if self.fidelity == "reconstructed" and not self.fidelity_note:
            raise ValueError(f"{self.name}: a reconstructed entry needs a fidelity_note (paper vs inferred)")
        if (self.source == "ours") == (self.fidelity == "library"):
            raise ValueError(f"{self.name}: fidelity 'library' goes with a library source and only with one")
        return self

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES[self.label_set]

    @property
    def seed_top1(self) -> float | None:
        return seed_rows()[self.seed_name].top1 if self.seed_name else None

    @property
    def seed_top5(self) -> float | None:
        return seed_rows()[self.seed_name].top5 if self.seed_name else None

    @property
    def seed_published_in(self) -> str | None:
        return seed_rows()[self.seed_name].published_in if self.seed_name else None
