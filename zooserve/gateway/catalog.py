"""The catalog as the gateway knows it: the snapshot written when the archives were built (no torch here).

Names are checked before anything reaches TorchServe; an unknown one is answered with the registry's own
message and close matches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zooserve import snapshot
from zooserve.zoo.names import unknown_model

from .errors import NotFound

MAX_NAME_LENGTH = 100  # registry names are short; a longer one is not worth a close-match search


class Catalog:
    def __init__(self, path: Path):
        self.path = path
        loaded = snapshot.read(path)  # SnapshotError, saying how to make one
        self.archive_version = loaded.archive_version
        self._entries = {entry.name: entry for entry in loaded.models}
        self._labels = {name: tuple(labels) for name, labels in loaded.labels.items()}
        self.names: tuple[str, ...] = tuple(sorted(self._entries))

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def info(self, name: str) -> snapshot.Entry:
        """The entry; NotFound (with close matches) for a name not in the catalog."""
        if len(name) > MAX_NAME_LENGTH:
            raise NotFound(f"unknown model: names are at most {MAX_NAME_LENGTH} characters")
        entry = self._entries.get(name)
        if entry is None:
            error = unknown_model(name, self.names)
            raise NotFound(str(error), close_matches=error.close_matches)
        return entry

    def entry(self, name: str) -> dict[str, Any]:
        """The catalog's row: the registry's metadata and the measured sizes."""
        return self.info(name).row()

    def class_names(self, name: str) -> tuple[str, ...]:
        return self._labels[self.info(name).label_set]

    def memory_bytes(self, name: str) -> int:
        """The estimated memory of the model's TorchServe workers; a worker's base for a model we do not know
        (registered on a backend by someone else)."""
        entry = self._entries.get(name)
        return entry.memory_bytes if entry is not None else snapshot.WORKER_BASE_BYTES
