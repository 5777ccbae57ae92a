"""Stock TorchServe, the alternative we measure against: the built-in ``image_classifier`` handler, an
eager model file and a state dict, as TorchServe's own image-classification example packages them.

The weights are the same fixed-seed weights our archives rebuild, so both sides run the same network.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from model_archiver.model_archiver_config import ModelArchiverConfig
from model_archiver.model_packaging import generate_model_archive

from zooserve.zoo import create_model
from zooserve.zoo.labels import class_names

# torchvision classes with the constructor arguments of each reference network; the archiver needs a
# model file that defines exactly one nn.Module class
MODEL_FILES = {
    "resnet18": ("from torchvision.models.resnet import ResNet, BasicBlock", "ResNet", "BasicBlock, [2, 2, 2, 2]"),
    "resnet50": ("from torchvision.models.resnet import ResNet, Bottleneck", "ResNet", "Bottleneck, [3, 4, 6, 3]"),
    "mobilenet_v2": ("from torchvision.models.mobilenetv2 import MobileNetV2", "MobileNetV2", ""),
}


def stock_supported(name: str) -> bool:
    return name in MODEL_FILES


def _model_file(name: str) -> str:
    imports, base, args = MODEL_FILES[name]
    return f"{imports}\n\n\nclass ImageClassifier({base}):\n    def __init__(self):\n        super().__init__({args})\n"


def build_stock_archive(name: str, store: Path, seed: int = 0) -> Path:
    """``<store>/<name>.mar`` for the built-in image_classifier handler (resize 256, crop 224, ImageNet norm)."""
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"stock-{name}-") as tmp:
        workdir = Path(tmp)
        (workdir / "model.py").write_text(_model_file(name))
        torch.save(create_model(name, seed=seed).state_dict(), workdir / "weights.pth")
        labels = {str(i): label for i, label in enumerate(class_names("imagenet-1k"))}
        (workdir / "index_to_name.json").write_text(json.dumps(labels))
        generate_model_archive(
            ModelArchiverConfig(
                model_name=name, handler="image_classifier", version="1.0", model_file=str(workdir / "model.py"),
                serialized_file=str(workdir / "weights.pth"), extra_files=str(workdir / "index_to_name.json"),
                export_path=str(store), force=True,
            )
        )
    return store / f"{name}.mar"
