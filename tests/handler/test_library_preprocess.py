"""Our decode + preprocessing against each library's own evaluation transform, for every library-backed entry.

Published weights only score as published when they see the input their library prepared for them: the
same resize size (with the library's rounding), interpolation, crop, mean and std. The reference here is
the library's transform applied as its documentation does (to a PIL image): torchvision's weights
transforms, timm's ``create_transform`` of the pretrained config, pytorchcv's validation transform from
its repository (osmr/imgclsmob ``imagenet_val_transform`` / ``cifar10_val_transform``) with the input size
and resize factor of pytorchcv's model table.
"""

from __future__ import annotations

import math

import pytest
import timm
import torch
from PIL import Image
from torchvision import transforms
from torchvision.models import get_weight
from torchvision.transforms._presets import ImageClassification

from tests.conftest import DATA
from zooserve.handler.decode import decode
from zooserve.handler.preprocess import Preprocessor
from zooserve.zoo import list_models, model_info
from zooserve.zoo.pretrained import pytorchcv_table_row

PHOTOS = ("chelsea.jpg", "rocket.jpg", "astronaut.png", "coffee.webp")
# the digit networks are trained here on 8x8 digits; no library publishes anything for them
LIBRARY_BACKED = [n for n in list_models() if model_info(n).source != "ours" and model_info(n).label_set != "digits"]
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)  # imgclsmob's CIFAR statistics


def pytorchcv_transform(name: str, label_set: str):
    if label_set != "imagenet-1k":  # the photo squeezed to 32x32 first (ours: no library takes photos at 32x32)
        return transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor(),
                                   transforms.Normalize(CIFAR_MEAN, CIFAR_STD)])
    row = pytorchcv_table_row(name)
    size, factor = (int(row["img_size"]), float(row["img_scale"])) if row else (224, 0.875)
    return transforms.Compose([transforms.Resize(math.ceil(size / factor)), transforms.CenterCrop(size),
                               transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def library_transform(name: str):
    """The transform the entry's library publishes for its weights (or its default one, without weights)."""
    info = model_info(name)
    ref = info.pretrained.ref.split("+")[0].strip() if info.pretrained else None  # an ensemble: its first member
    if info.source == "torchvision":
        return get_weight(ref).transforms() if ref else ImageClassification(crop_size=224)
    if info.source == "timm":
        if ref:
            config = timm.data.resolve_data_config(pretrained_cfg=timm.get_pretrained_cfg(ref).to_dict())
        else:
            config = timm.data.resolve_data_config(args={"input_size": (3, 224, 224)})
        return timm.data.create_transform(**config)
    library_name = ref or (info.library_id or "").removeprefix("pytorchcv:")
    return pytorchcv_transform(library_name, info.label_set)


def ours(name: str, data: bytes) -> torch.Tensor:
    preprocessor = Preprocessor(model_info(name).preprocess)
    batch = preprocessor.resize_and_crop(decode(data))[None]
    return preprocessor.normalize(batch, torch.float32)[0]


@pytest.mark.parametrize("name", LIBRARY_BACKED)
def test_preprocessing_equals_the_library_transform(name):
    std = torch.tensor(model_info(name).preprocess.std).view(3, 1, 1)
    transform = library_transform(name)
    for photo in PHOTOS:
        expected = transform(Image.open(DATA / photo).convert("RGB"))
        got = ours(name, (DATA / photo).read_bytes())
        assert got.shape == expected.shape, f"{name} on {photo}: {tuple(got.shape)} vs {tuple(expected.shape)}"
        # in 0..255 levels: decoders and resize kernels may round a pixel one level apart, no more; a resize
        # one pixel off or the other interpolation moved the mean by 0.4 to 8 levels on these photographs
        levels = ((got - expected) * std * 255).abs()
        assert levels.max() <= 2.01, f"{name} on {photo}: a pixel {levels.max():.2f} levels off"
        assert levels.mean() <= 0.05, f"{name} on {photo}: {levels.mean():.3f} levels off on average"


def test_the_comparison_tells_a_one_pixel_resize_apart():
    """The tolerance above is tight enough to catch the smallest mistake: resizing to 257 instead of 256."""
    info = model_info("resnet18")
    wrong = Preprocessor(info.preprocess.model_copy(update={"resize_size": 257}))
    data = (DATA / "rocket.jpg").read_bytes()
    got = wrong.normalize(wrong.resize_and_crop(decode(data))[None], torch.float32)[0]
    expected = library_transform("resnet18")(Image.open(DATA / "rocket.jpg").convert("RGB"))
    std = torch.tensor(info.preprocess.std).view(3, 1, 1)
    assert ((got - expected) * std * 255).abs().mean() > 0.05
