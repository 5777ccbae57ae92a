"""Stock TorchServe, the alternative we measure against: the built-in ``image_classifier`` handler, an
eager model file and a state dict, as TorchServe's own image-classification example packages them.

The weights are the same fixed-seed weights our archives rebuild, so both sides run the same network.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import torch
from model_archiver.model_archiver_config import ModelArchiverConfig
from model_archiver.model_packaging import generate_model_archive

from zooserve.torchserve import TorchServe, TorchServePorts
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


@dataclass(frozen=True)
class StockConfig:
    """How stock TorchServe runs the model: its workers, torch threads (None: torch's default, all cores
    in every worker) and batching."""

    workers: int
    threads: int | None
    batch_size: int
    max_batch_delay_ms: int

    def describe(self) -> str:
        threads = "torch's default threads" if self.threads is None else f"OMP_NUM_THREADS={self.threads}"
        batching = (f"batching {self.batch_size} / {self.max_batch_delay_ms} ms" if self.batch_size > 1
                    else "no batching")
        return f"{self.workers} worker(s), {threads}, {batching}"


def stock_configs(cores: int) -> dict[str, StockConfig]:
    """At its defaults (for a model registered at start-up: one worker per core, batch size 1), and at its
    best configuration tried: 1 and 2 workers with workers x threads = cores, batching as our archives."""
    return {"stock_default": StockConfig(cores, None, 1, 100),
            "stock_best_1w": StockConfig(1, cores, 4, 5),
            "stock_best_2w": StockConfig(min(2, cores), max(1, cores // 2), 4, 5)}


def stock_server(config: StockConfig, store: Path, workdir: Path, ports: TorchServePorts) -> TorchServe:
    """A TorchServe for ``config`` (not started: ``with`` starts and stops it)."""
    env = {} if config.threads is None else {"OMP_NUM_THREADS": str(config.threads)}
    return TorchServe(workdir, store, ports, template=None, env=env)


def _management(server: TorchServe) -> httpx.Client:
    return httpx.Client(base_url=server.management_url, timeout=600,
                        headers={"Authorization": f"Bearer {server.keys().management}"})


def register_stock(server: TorchServe, name: str, config: StockConfig) -> None:
    with _management(server) as management:
        management.post("/models", params={"url": f"{name}.mar", "synchronous": "true",
                                           "initial_workers": config.workers, "batch_size": config.batch_size,
                                           "max_batch_delay": config.max_batch_delay_ms}).raise_for_status()


def unregister_stock(server: TorchServe, name: str) -> None:
    with _management(server) as management:
        management.delete(f"/models/{name}").raise_for_status()
