"""The libraries' published weights: where each library keeps them once fetched, and whether they are there.

Each library fetches and caches its weights itself; this module only asks where (with the library's
own functions), so that a build can tell cached weights, which load without any network, from weights
that would need a download:

- torchvision: ``torch.hub``'s checkpoint directory, ``$TORCH_HOME/hub/checkpoints/<file name of the URL>``;
- timm: the Hugging Face hub cache, ``$HF_HOME/hub/models--timm--<tag>/snapshots/<rev>/model.safetensors``;
- pytorchcv: ``~/.torch/models/<name>-<error>-<sha1 prefix>.pth``, named from pytorchcv's model table.

``HF_HUB_OFFLINE=1`` (Hugging Face's own switch) keeps every hub offline here: only cached weights load.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from urllib.parse import urlsplit

import torch
from torch import nn

from .meta import Pretrained
from .weights import check_state_dict

PYTORCHCV_STORE = Path("~", ".torch", "models")  # pytorchcv's default local_model_store_dir_path


def hubs_offline() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode()


def pytorchcv_table_row(name: str) -> dict[str, str] | None:
    """The row of pytorchcv's model table (``model_metainfos.csv``) for ``name``; None without published weights."""
    from pytorchcv.models.common.model_store import get_model_metainfos_file_path

    with open(get_model_metainfos_file_path(), encoding="utf-8", newline="") as table:
        for row in csv.DictReader(table):
            if row["model_name"] == name and row["checksum"] != "NA":
                return row
    return None


def pytorchcv_file(name: str) -> Path:
    """Where pytorchcv keeps the weights of ``name`` (``get_model_file``'s naming)."""
    row = pytorchcv_table_row(name)
    if row is None:
        raise ValueError(f"pytorchcv publishes no weights for {name!r}")
    return PYTORCHCV_STORE.expanduser() / f"{name}-{row['error_value']}-{row['checksum'][:8]}.pth"


def load_pytorchcv_weights(model: nn.Module, name: str) -> nn.Module:
    """pytorchcv's published weights for ``name`` into ``model``.

    A file already in pytorchcv's cache is read with ``weights_only=True`` (pytorchcv itself unpickles it
    whole) and checked key by key against the model; pytorchcv's SHA-1 check is applied to what it
    downloads, which is what a missing file goes through (``get_model_file``).
    """
    path = pytorchcv_file(name)
    if not path.exists():
        if hubs_offline():
            raise FileNotFoundError(f"{path} is not cached and the hubs are offline (HF_HUB_OFFLINE)")
        from pytorchcv.models.common.model_store import get_model_file

        path = Path(get_model_file(name, str(PYTORCHCV_STORE)))
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if k in model.state_dict()}  # as pytorchcv's ignore_extra
    check_state_dict(model, state)
    model.load_state_dict(state)
    return model


def _hub_checkpoint(url: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` keeps the file of ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlsplit(url).path)


def _torchvision_cached(ref: str) -> bool:
    from torchvision.models import get_weight

    return _hub_checkpoint(get_weight(ref).url).exists()


def _timm_cached(tag: str) -> bool:
    """timm reads a tag's weights from the Hugging Face hub where it names a hub repository, else from its URL."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    cfg = timm.get_pretrained_cfg(tag)
    if not cfg.hf_hub_id:
        return bool(cfg.url) and _hub_checkpoint(cfg.url).exists()
    repo = cfg.hf_hub_id.split("@")[0]
    return any(isinstance(try_to_load_from_cache(repo, f), str) for f in ("model.safetensors", "pytorch_model.bin"))


def is_cached(pretrained: Pretrained) -> bool:
    """Whether every weights file ``pretrained`` names is in its library's cache (no network needed)."""
    refs = [ref.strip() for ref in pretrained.ref.split("+")]  # an ensemble names one file per member
    if pretrained.library == "torchvision":
        return all(_torchvision_cached(ref) for ref in refs)
    if pretrained.library == "timm":
        return all(_timm_cached(ref) for ref in refs)
    return all(pytorchcv_file(ref).exists() for ref in refs)
