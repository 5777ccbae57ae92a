"""Writes the catalog snapshot (``zooserve/snapshot.py``) beside the archives: the zoo's ``catalog()``, the
class names of each label set, and what each archive in the store carries.

Every registry entry is in it, built or not: the gateway serves the whole catalog and loads an archive on
first use. Measuring every entry builds each on PyTorch's meta device (tens of seconds for the zoo), so
``is_current`` lets a ``--if-missing`` build keep a snapshot of the same registry.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import yaml

from zooserve import __version__, snapshot
from zooserve.zoo.catalog import catalog, metadata_entry
from zooserve.zoo.labels import class_names
from zooserve.zoo.meta import NUM_CLASSES
from zooserve.zoo.registry import list_models
from zooserve.zoo.runtimes import load_choices

from .build import ARCHIVE_VERSION, WORKERS


def registry_digest() -> str:
    """A digest of every entry's metadata and of the measured runtime choices (cheap: nothing is built)."""
    rows = [metadata_entry(name) for name in list_models()]
    return hashlib.sha256(json.dumps([rows, load_choices()], sort_keys=True).encode()).hexdigest()


def archive_facts(path: Path) -> snapshot.Archive | None:
    """What an archive of ours says in its model-config.yaml; None for anything else (a stock archive)."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = yaml.safe_load(archive.read("model-config.yaml"))
        zoo = config["zoo"]
        return snapshot.Archive(weights=zoo["weights"], workers=config["minWorkers"], runtime=zoo.get("runtime", "eager"))
    except (OSError, KeyError, TypeError, zipfile.BadZipFile, yaml.YAMLError):
        return None


def _entry(row: dict, archive: snapshot.Archive | None) -> snapshot.Entry:
    workers = archive.workers if archive is not None else WORKERS
    runtime = archive.runtime if archive is not None else row["runtime"]
    return snapshot.Entry.model_validate(row | {
        "memory_bytes": snapshot.estimated_bytes(row["params"], workers, runtime, macs=row["macs"]), "archive": archive,
    })


def _archives(store: Path | None) -> dict[str, snapshot.Archive | None]:
    return {p.stem: archive_facts(p) for p in store.glob("*.mar")} if store is not None else {}


def build_snapshot(store: Path | None) -> snapshot.Snapshot:
    archives = _archives(store)
    return snapshot.Snapshot(
        format=snapshot.FORMAT, zooserve=__version__, registry_digest=registry_digest(),
        archive_version=ARCHIVE_VERSION, labels={name: list(class_names(name)) for name in NUM_CLASSES},
        models=[_entry(row, archives.get(row["name"])) for row in catalog()],
    )


def with_archives(base: snapshot.Snapshot, store: Path) -> snapshot.Snapshot:
    """``base`` (a current snapshot) with the archive facts of ``store``: nothing measured again."""
    archives = _archives(store)
    rows = [entry.model_dump(exclude={"memory_bytes", "archive"}) for entry in base.models]
    return base.model_copy(update={"models": [_entry(row, archives.get(row["name"])) for row in rows]})


def write_catalog(store: Path | None, path: Path | None = None) -> Path:
    """Writes the snapshot to ``path`` (default: ``catalog.json`` in ``store``); archive facts from ``store``.
    A current snapshot already there is reused, its archive facts refreshed (measuring the zoo takes a while)."""
    if path is None:
        if store is None:
            raise ValueError("write_catalog needs a store or a path")
        path = store / snapshot.FILE_NAME
    fresh = store is not None and is_current(path)
    snapshot.write(path, with_archives(snapshot.read(path), store) if fresh else build_snapshot(store))
    return path


def is_current(path: Path) -> bool:
    """Whether ``path`` holds a snapshot this zooserve reads, of the registry as it is now."""
    try:
        return snapshot.read(path).registry_digest == registry_digest()
    except snapshot.SnapshotError:
        return False
