"""Real models for the A/B demonstration: zoo ResNets trained on scikit-learn's handwritten digits.

The digits (1,797 8x8 greyscale images that ship inside scikit-learn, no download) are encoded as PNG
files and go through the very decode and preprocessing path the server uses, so what the models learn is
what they are served. Training takes about a minute on two CPU cores.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from zooserve.handler.decode import decode
from zooserve.handler.preprocess import Preprocessor
from zooserve.zoo import create_model, model_info
from zooserve.zoo.weights import save_weights

log = logging.getLogger(__name__)
SPLIT_SEED = 0


@dataclass(frozen=True)
class DigitImage:
    png: bytes
    label: int


def digit_images() -> tuple[list[DigitImage], list[DigitImage]]:
    """Train and held-out test sets (half each, stratified, fixed seed) as PNG files with labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels = (digits.images * (255 / 16)).round().astype(np.uint8)
    train_idx, test_idx = train_test_split(
        np.arange(len(pixels)), test_size=0.5, random_state=SPLIT_SEED, stratify=digits.target
    )
    as_png = [_png(p) for p in pixels]
    return ([DigitImage(as_png[i], int(digits.target[i])) for i in train_idx],
            [DigitImage(as_png[i], int(digits.target[i])) for i in test_idx])


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def tensors(name: str, images: list[DigitImage]) -> tuple[torch.Tensor, torch.Tensor]:
    """The served preprocessing applied to every image: a float batch and its labels."""
    preprocessor = Preprocessor(model_info(name).preprocess)
    batch = torch.stack([preprocessor.resize_and_crop(decode(image.png)) for image in images])
    return preprocessor.normalize(batch, torch.float32), torch.tensor([image.label for image in images])


def train(name: str, images: list[DigitImage], epochs: int, seed: int = 0) -> nn.Module:
    """Plain SGD with momentum and a cosine schedule; a random shift of up to 2 pixels as augmentation."""
    torch.manual_seed(seed)
    model = create_model(name, seed=seed).train()
    x, y = tensors(name, images)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    steps = epochs * ((len(x) + 63) // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=steps)
    for epoch in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 64):
            index = order[start:start + 64]
            shift = tuple(int(v) for v in torch.randint(-2, 3, (2,)))
            loss = nn.functional.cross_entropy(model(torch.roll(x[index], shift, dims=(2, 3))), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        log.info("%s epoch %d/%d loss %.3f", name, epoch + 1, epochs, loss.item())
    return model.eval()


def accuracy(model: nn.Module, name: str, images: list[DigitImage]) -> float:
    x, y = tensors(name, images)
    with torch.inference_mode():
        return (model(x).argmax(dim=1) == y).float().mean().item()


def trained_weights(name: str, epochs: int, directory: Path) -> Path:
    """Trains once and keeps the weights as safetensors in ``directory``; later calls reuse them."""
    path = directory / f"{name}-e{epochs}.safetensors"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        train_images, _ = digit_images()
        save_weights(train(name, train_images, epochs), path)
    return path
