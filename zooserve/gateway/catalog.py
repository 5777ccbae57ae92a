"""The zoo registry as the gateway uses it: names checked before anything reaches TorchServe, metadata."""

from __future__ import annotations

from functools import cache
from typing import Any

from zooserve.zoo import ModelInfo, UnknownModelError, list_models, model_info
from zooserve.zoo.catalog import metadata_entry
from zooserve.zoo.measure import build_on_meta, count_params

from .errors import NotFound

MAX_NAME_LENGTH = 100  # registry names are short; a longer one is not worth a close-match search


class Catalog:
    def __init__(self) -> None:
        self.names: tuple[str, ...] = tuple(list_models())

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def info(self, name: str) -> ModelInfo:
        """The entry's metadata; NotFound (with close matches) for a name not in the registry."""
        if len(name) > MAX_NAME_LENGTH:
            raise NotFound(f"unknown model: names are at most {MAX_NAME_LENGTH} characters")
        try:
            return model_info(name)
        except UnknownModelError as error:
            raise NotFound(str(error), close_matches=error.close_matches) from None

    def entry(self, name: str) -> dict[str, Any]:
        """The zoo's metadata without the measurement, which builds every model and takes most of a
        minute for the whole zoo (docs/models.md has the measured sizes)."""
        self.info(name)
        return metadata_entry(name)


@cache
def parameter_count(name: str) -> int:
    """Counted on PyTorch's meta device: no weights allocated, up to ~2 s for the largest networks."""
    return count_params(build_on_meta(name))
