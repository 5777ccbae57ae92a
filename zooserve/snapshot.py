"""The catalog snapshot: what the gateway knows of each model, one JSON file written when archives are built.

``zooserve store build`` writes it beside the archives (``model_store/catalog.json``) from the zoo's
``catalog()``; the gateway reads it at start (``ZOO_CATALOG_PATH``), so it needs neither torch nor the
model libraries. This module is the format, and imports neither. Format 1::

    {"format": 1,                        # a reader refuses any other
     "zooserve": "0.1.0",                # the package version that wrote it
     "registry_digest": "<sha256>",      # of the registry's metadata: tells a stale snapshot from a current one
     "archive_version": "1.0",           # the version every archive is built with
     "labels": {"imagenet-1k": ["tench", ...], ...},   # class names of each label set, in index order
     "models": [{...,                    # one row of the zoo's catalog(): name, family, paper, label_set,
                                         # preprocess, num_classes, heavy, params, macs, ...
                 "memory_bytes": 1882718208,             # estimated memory of all its TorchServe workers
                 "archive": {"weights": "fixed-seed", "workers": 2, "runtime": "onnxruntime"},  # the archive
                                         # beside it (null: none), and what its workers run the model on
                 "runtime": "onnxruntime"}]}  # the runtime measured for the model (zooserve store select)
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

FORMAT = 1
FILE_NAME = "catalog.json"
MiB = 1024 * 1024
# measured: the worker of squeezenet1_0 (1.2M parameters) holds ~780 MB, resnet18's (11.7M) ~830 MB
WORKER_BASE_BYTES = 800 * MiB
BYTES_PER_PARAMETER = 8  # float32 weights, and as much again while building the model and running it
# A worker on an exported runtime holds more (docs/serving-profile.json, every entry on its measured runtime):
# the runtime's library beside torch, its own copy of the weights, some of them repacked for its kernels, and
# an arena for the activations that grows with the network's work per image (the NAS networks at 331x331 and
# hier_evolved were 3-11% over an estimate without it).
EXPORTED_WORKER_BASE_BYTES = 1050 * MiB
EXPORTED_BYTES_PER_PARAMETER = 8
EXPORTED_BYTES_PER_MAC = 6 * MiB / 1e9  # 6 MiB per GMAC of one image
EXPORTED_RUNTIMES = frozenset({"onnxruntime", "openvino"})


def estimated_bytes(params: int, workers: int, runtime: str = "eager", *, macs: int) -> int:
    """Every worker of a model holds its own interpreter, torch and copy of the weights."""
    if runtime in EXPORTED_RUNTIMES:
        return workers * round(EXPORTED_WORKER_BASE_BYTES + EXPORTED_BYTES_PER_PARAMETER * params
                               + EXPORTED_BYTES_PER_MAC * macs)
    return workers * (WORKER_BASE_BYTES + BYTES_PER_PARAMETER * params)


class SnapshotError(ValueError):
    """The snapshot is missing, unreadable or of another format; the message says what to do."""


class Archive(BaseModel):
    model_config = ConfigDict(frozen=True)

    weights: str  # fixed-seed, file or pretrained
    workers: int
    runtime: str = "eager"  # what its workers run the model on


class Entry(BaseModel):
    """One model. The fields the gateway acts on are typed; the rest of the catalog's row is kept as is."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    label_set: str
    num_classes: int
    heavy: bool
    params: int
    memory_bytes: int
    archive: Archive | None = None
    runtime: str | None = None

    def row(self) -> dict[str, Any]:
        """The catalog's row as written (GET /models builds on it)."""
        return self.model_dump(mode="json")


class Snapshot(BaseModel):
    model_config = ConfigDict(frozen=True)

    format: int
    zooserve: str
    registry_digest: str
    archive_version: str
    labels: dict[str, list[str]]
    models: list[Entry]

    @model_validator(mode="after")
    def _labels_fit_the_models(self) -> "Snapshot":
        for entry in self.models:
            names = self.labels.get(entry.label_set)
            if names is None or len(names) != entry.num_classes:
                raise ValueError(f"{entry.name}: label set {entry.label_set!r} needs {entry.num_classes} class "
                                 f"names, the snapshot has {0 if names is None else len(names)}")
        return self


def read(path: Path) -> Snapshot:
    """The snapshot at ``path``; SnapshotError saying how to make one when there is none, or none we read."""
    rebuild = "build the archives with `zooserve store build` (it writes the snapshot beside them) or set " \
              "ZOO_CATALOG_PATH to one"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SnapshotError(f"no catalog snapshot at {path}: {rebuild}") from None
    except (OSError, ValueError) as error:
        raise SnapshotError(f"catalog snapshot {path} cannot be read ({error}): {rebuild}") from None
    found = data.get("format") if isinstance(data, dict) else None
    if found != FORMAT:
        raise SnapshotError(f"catalog snapshot {path} is format {found!r}; this zooserve reads format {FORMAT}: "
                            f"{rebuild}")
    try:
        return Snapshot.model_validate(data)
    except ValidationError as error:
        raise SnapshotError(f"catalog snapshot {path} is malformed: {error}") from None


def write(path: Path, snapshot: Snapshot) -> None:
    """Written whole or not at all (a gateway starting meanwhile reads the old one or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".catalog-", suffix=".json", delete=False,
                                     encoding="utf-8") as out:
        json.dump(snapshot.model_dump(mode="json"), out, indent=1)
    os.chmod(out.name, 0o644)  # a temporary file is the writer's alone; the gateway may run as another user
    os.replace(out.name, path)
