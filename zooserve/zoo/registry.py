"""The one registry of architectures, in the manner of timm's ``@register_model`` / ``create_model``.

A family file under ``families/`` decorates one builder per variant::

    @register_model(ModelInfo(name="resnet152", seed_name="ResNet", ...))
    def resnet152(pretrained: bool = False) -> nn.Module:
        return torchvision.models.resnet152(weights="IMAGENET1K_V1" if pretrained else None)

Every module in ``families/`` whose name does not start with ``_`` is imported on first use, so adding an
architecture is adding one file (or one builder in its family's file).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch
from torch import nn

from .meta import ModelInfo
from .names import UnknownModelError, unknown_model  # noqa: F401 (UnknownModelError: re-exported)
from .pretrained import hubs_offline, is_cached

DEFAULT_SEED = 0


class Builder(Protocol):
    def __call__(self, pretrained: bool = False) -> nn.Module: ...


class DuplicateModelError(ValueError):
    """Raised when two builders claim the same registry name."""


class PretrainedUnavailableError(RuntimeError):
    """Raised when published weights are asked for but the library could not fetch them."""


@dataclass(frozen=True)
class Entry:
    info: ModelInfo
    builder: Builder


_REGISTRY: dict[str, Entry] = {}
_FAMILIES_LOADED = False


def register_model(info: ModelInfo) -> Callable[[Builder], Builder]:
    """Register ``builder`` under ``info.name``; a second registration of the name is an error."""

    def decorate(builder: Builder) -> Builder:
        if info.name in _REGISTRY:
            previous = _REGISTRY[info.name].builder
            raise DuplicateModelError(
                f"model {info.name!r} is registered twice: by {previous.__module__}.{previous.__qualname__} "
                f"and by {builder.__module__}.{builder.__qualname__}"
            )
        _REGISTRY[info.name] = Entry(info, builder)
        return builder

    return decorate


def _load_families() -> None:
    global _FAMILIES_LOADED
    if _FAMILIES_LOADED:
        return
    _FAMILIES_LOADED = True
    package = f"{__package__}.families"
    for module in pkgutil.iter_modules([str(Path(__file__).with_name("families"))]):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package}.{module.name}")


def _entry(name: str) -> Entry:
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise unknown_model(name, _REGISTRY) from None


def list_models(seed_only: bool = False) -> list[str]:
    """Registered names, sorted; with ``seed_only`` just the entries that stand for a seed-table row."""
    _load_families()
    return sorted(n for n, e in _REGISTRY.items() if e.info.seed_name or not seed_only)


def model_info(name: str) -> ModelInfo:
    return _entry(name).info


def create_model(
    name: str,
    *,
    pretrained: bool = False,
    weights: str | Path | None = None,
    seed: int = DEFAULT_SEED,
) -> nn.Module:
    """Build ``name`` in eval mode.

    By default the weights come from a fixed-seed initialization (the same seed gives the same model on
    any machine). ``weights`` loads a local safetensors or state-dict file over it, and ``pretrained``
    asks the library's own loading code for the published weights (this needs the network).
    """
    entry = _entry(name)
    if pretrained and weights is not None:
        raise ValueError("give either pretrained=True or weights=..., not both")
    if pretrained:
        model = _build_pretrained(entry)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = entry.builder(pretrained=False)
    if weights is not None:
        from .weights import load_weights

        load_weights(model, weights)
    return model.eval()


def _build_pretrained(entry: Entry) -> nn.Module:
    if entry.info.pretrained is None:
        raise PretrainedUnavailableError(
            f"{entry.info.name}: no published weights are known to any library; pass weights=<file> instead"
        )
    ref = entry.info.pretrained
    if hubs_offline() and not is_cached(ref):
        raise PretrainedUnavailableError(
            f"{entry.info.name}: {ref.library} weights {ref.ref!r} are not cached "
            "and the hubs are offline (HF_HUB_OFFLINE)"
        )
    try:
        return entry.builder(pretrained=True)
    except Exception as exc:  # network errors differ by library (URLError, HF hub errors, OSError)
        raise PretrainedUnavailableError(
            f"{entry.info.name}: could not fetch {ref.library} weights {ref.ref!r}: {exc}"
        ) from exc
