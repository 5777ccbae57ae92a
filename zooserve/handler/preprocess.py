"""Resize, centre-crop and normalize decoded images into one batch, as each model's config says."""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from zooserve.zoo.meta import Preprocess

_INTERPOLATION = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}


class Preprocessor:
    """Turns uint8 (3, H, W) images of any size into a normalized float batch (N, 3, h, w)."""

    def __init__(self, config: Preprocess):
        _, self.height, self.width = config.input_size
        self.resize_size = config.resize_size
        self.squash = config.crop_mode == "squash"
        self.interpolation = _INTERPOLATION[config.interpolation]
        self.antialias = config.antialias
        # normalization folded into one multiply-add on 0..255 values: (x / 255 - mean) / std
        self.scale = torch.tensor([1 / (255 * s) for s in config.std]).view(1, 3, 1, 1)
        self.shift = torch.tensor([-m / s for m, s in zip(config.mean, config.std)]).view(1, 3, 1, 1)

    def resize_and_crop(self, image: torch.Tensor) -> torch.Tensor:
        """One image to the input size, still uint8: shorter side to resize_size, then the centre crop (the
        libraries' evaluation transforms: torchvision's Resize(int) sizes the longer side as they do)."""
        if self.squash:  # the CIFAR and digits networks: the whole picture squeezed to the input size
            size = [self.height, self.width]
            return F.resize(image, size, interpolation=self.interpolation, antialias=self.antialias)
        image = F.resize(image, [self.resize_size], interpolation=self.interpolation, antialias=self.antialias)
        return F.center_crop(image, [self.height, self.width])

    def normalize(self, batch: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """uint8 batch (N, 3, h, w), on any device, to the normalized input in ``dtype``."""
        scale = self.scale.to(batch.device, dtype)
        shift = self.shift.to(batch.device, dtype)
        return batch.to(dtype).mul_(scale).add_(shift)
