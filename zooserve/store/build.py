"""Builds ``model_store/<name>.mar`` for registry entries with torch-model-archiver.

An archive holds the one handler and a model-config.yaml naming the architecture. Weights come, in this
order, from a file given for the model, from the library's published weights (``pretrained``: read from
the library's cache, or downloaded by the library when its hub answers), or from the fixed seed. Fixed-seed
archives hold no weights at all: the handler rebuilds the initialization from the seed, which is exactly
reproducible, so we do not zip hundreds of megabytes of random numbers. Carried weights are checked
against the model and stored as safetensors.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from model_archiver.model_archiver_config import ModelArchiverConfig
from model_archiver.model_packaging import generate_model_archive

from zooserve.handler.service import HandlerConfig
from zooserve.zoo import PretrainedUnavailableError, create_model, model_info
from zooserve.zoo.pretrained import hubs_offline, is_cached
from zooserve.zoo.weights import save_weights

ROOT = Path(__file__).resolve().parents[2]
HANDLER = ROOT / "zooserve" / "handler" / "zoo_handler.py"
DEFAULT_STORE = ROOT / "model_store"
WEIGHTS_FILE = "weights.safetensors"
ARCHIVE_VERSION = "1.0"

# Worker and batching defaults, chosen by measurement (docs/tuning.md, `python -m loadtests.tune`): two
# single-threaded workers beat one two-threaded worker on 2 cores (a thread stalled by the frontend or the
# gateway holds up its partner thread at every parallel region; a single-threaded worker only slows
# itself), and batches of 4 with a 5 ms delay amortize per-call overhead without hurting light load.
# The handler gives each worker cores / workers torch threads, so larger machines get more threads each.
WORKERS = 2
BATCH_SIZE = 4
MAX_BATCH_DELAY_MS = 5
RESPONSE_TIMEOUT_S = 120
HEAVY_RESPONSE_TIMEOUT_S = 600  # 100+ GMAC networks take seconds per image on a small CPU
WEIGHTS_MODES = ("pretrained", "fixed-seed")
# where each library downloads from; a short connect tells a reachable hub from one that would hang
# (torch.hub's and pytorchcv's downloads have no timeout of their own)
HUBS = {"torchvision": "download.pytorch.org", "timm": "huggingface.co", "pytorchcv": "github.com"}
HUB_CONNECT_TIMEOUT_S = 5


def weights_mode() -> str:
    """``ZOO_WEIGHTS``: ``pretrained`` (the default: published weights wherever they can be had) or ``fixed-seed``."""
    mode = os.environ.get("ZOO_WEIGHTS", "pretrained")
    if mode not in WEIGHTS_MODES:
        raise ValueError(f"ZOO_WEIGHTS must be one of {', '.join(WEIGHTS_MODES)}, not {mode!r}")
    return mode


def hub_reachable(library: str) -> bool:
    try:
        socket.create_connection((HUBS[library], 443), timeout=HUB_CONNECT_TIMEOUT_S).close()
        return True
    except OSError:
        return False


@dataclass
class PublishedWeights:
    """The published weights of one build run: fetched once per model, each unreachable hub tried once."""

    unavailable: dict[str, str] = field(default_factory=dict)  # model name -> why it fell back to fixed-seed
    reachable: dict[str, bool] = field(default_factory=dict)  # library -> whether its hub answered

    def obtainable(self, name: str) -> bool:
        """Whether the published weights of ``name`` are cached, or their hub answers (and is not kept offline)."""
        ref = model_info(name).pretrained
        if is_cached(ref):
            return True
        if hubs_offline():
            return False
        if ref.library not in self.reachable:
            self.reachable[ref.library] = hub_reachable(ref.library)
        return self.reachable[ref.library]

    def model(self, name: str):
        """The model with its published weights, or None (the reason kept for the run's one warning)."""
        ref = model_info(name).pretrained
        if not self.obtainable(name):
            self.unavailable[name] = f"{ref.library} weights not cached and {HUBS[ref.library]} " + (
                "kept offline (HF_HUB_OFFLINE)" if hubs_offline() else "unreachable")
            return None
        try:
            return create_model(name, pretrained=True)
        except PretrainedUnavailableError as error:
            self.reachable[ref.library] = False  # a hub that fails once is not tried again in this run
            self.unavailable[name] = str(error)
            return None

    def warning(self) -> str | None:
        if not self.unavailable:
            return None
        names = sorted(self.unavailable)
        return (
            f"{len(names)} archive(s) built with FIXED-SEED weights instead of the published ones; their "
            f"predictions are not meaningful: {', '.join(names)} (e.g. {self.unavailable[names[0]]}). For real "
            f"weights, rebuild them where the hubs are reachable or their caches are filled: "
            f"`zooserve store build {' '.join(names)}`; ZOO_WEIGHTS=fixed-seed builds fixed-seed archives "
            f"without trying."
        )


@dataclass
class ArchiveOptions:
    seed: int = 0
    weights: dict[str, Path] = field(default_factory=dict)  # model name -> local weights file
    pretrained: bool = False  # the libraries' published weights where they can be had (else fixed-seed)
    published: PublishedWeights = field(default_factory=PublishedWeights)
    batch_size: int = BATCH_SIZE
    max_batch_delay_ms: int = MAX_BATCH_DELAY_MS
    workers: int = WORKERS


def model_config(name: str, options: ArchiveOptions, weights: str) -> dict:
    """The archive's model-config.yaml: TorchServe's worker and batch settings, then our ``zoo`` section."""
    info = model_info(name)
    zoo = HandlerConfig(
        model=name,
        version=ARCHIVE_VERSION,
        seed=options.seed,
        weights=weights,
        weights_file=None if weights == "fixed-seed" else WEIGHTS_FILE,
    )
    return {
        "minWorkers": options.workers,
        "maxWorkers": options.workers,
        "batchSize": options.batch_size,
        "maxBatchDelay": options.max_batch_delay_ms,
        "responseTimeout": HEAVY_RESPONSE_TIMEOUT_S if info.heavy else RESPONSE_TIMEOUT_S,
        "zoo": zoo.model_dump(exclude_defaults=False),
    }


def _write_weights(name: str, options: ArchiveOptions, workdir: Path) -> str:
    """Saves the weights to carry, if any, into ``workdir``; returns where the weights come from."""
    if name in options.weights:
        model, origin = create_model(name, weights=options.weights[name]), "file"
    elif options.pretrained and model_info(name).pretrained is not None:
        model, origin = options.published.model(name), "pretrained"
        if model is None:
            return "fixed-seed"
    else:
        return "fixed-seed"
    save_weights(model, workdir / WEIGHTS_FILE)
    return origin


def build_archive(name: str, store: Path = DEFAULT_STORE, options: ArchiveOptions | None = None) -> Path:
    options = options or ArchiveOptions()
    model_info(name)  # an unknown name fails here, with close matches
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"zoo-{name}-") as tmp:
        workdir = Path(tmp)
        origin = _write_weights(name, options, workdir)
        config_path = workdir / "model-config.yaml"
        config_path.write_text(yaml.safe_dump(model_config(name, options, origin), sort_keys=False))
        generate_model_archive(
            ModelArchiverConfig(
                model_name=name,
                handler=str(HANDLER),
                version=ARCHIVE_VERSION,
                serialized_file=str(workdir / WEIGHTS_FILE) if origin != "fixed-seed" else None,
                config_file=str(config_path),
                export_path=str(store),
                archive_format="default",
                force=True,
            )
        )
    return store / f"{name}.mar"


def archive_weights(path: Path) -> str:
    """Where the weights of a built archive come from (its model-config.yaml's ``zoo.weights``)."""
    with zipfile.ZipFile(path) as archive:
        return yaml.safe_load(archive.read("model-config.yaml"))["zoo"]["weights"]


def wants_rebuild(path: Path, name: str, options: ArchiveOptions) -> bool:
    """Whether an existing archive should be rebuilt: it is missing, or it serves the fixed seed where the
    published weights are asked for and can be had now (a store built offline catches up once online)."""
    if not path.exists():
        return True
    if not options.pretrained or model_info(name).pretrained is None or archive_weights(path) != "fixed-seed":
        return False
    return options.published.obtainable(name)


def remove_stale(store: Path, keep: set[str]) -> list[Path]:
    """Archives in the store whose model is no longer in the registry."""
    stale = [p for p in store.glob("*.mar") if p.stem not in keep]
    for path in stale:
        path.unlink() if path.is_file() else shutil.rmtree(path)
    return stale
