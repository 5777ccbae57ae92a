"""Class names for the label sets the zoo's models predict."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .meta import NUM_CLASSES, LabelSet

_DATA = Path(__file__).with_name("data")


@lru_cache(maxsize=None)
def class_names(label_set: LabelSet) -> tuple[str, ...]:
    if label_set == "imagenet-1k":
        # torchvision ships the 1000 ImageNet-1k class names in index order with its weights metadata
        from torchvision.models._meta import _IMAGENET_CATEGORIES

        names = tuple(_IMAGENET_CATEGORIES)
    elif label_set == "digits":
        names = tuple(str(digit) for digit in range(10))
    else:
        names = tuple(_DATA.joinpath(f"{label_set.replace('-', '')}.txt").read_text().split())
    if len(names) != NUM_CLASSES[label_set]:
        raise RuntimeError(f"{label_set}: {len(names)} class names, expected {NUM_CLASSES[label_set]}")
    return names
