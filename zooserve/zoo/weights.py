"""Loading and saving weights: safetensors, or a PyTorch state dict read with ``weights_only=True``.

A file that does not fit the model is rejected before anything is copied, with the mismatches named.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

_MAX_LISTED = 10


class WeightsMismatchError(ValueError):
    """The file's tensors do not match the model's: missing or unexpected keys, or wrong shapes."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_file(str(path), device="cpu")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper_key in ("state_dict", "model"):  # common checkpoint layouts
        if isinstance(state, dict) and isinstance(state.get(wrapper_key), dict):
            state = state[wrapper_key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsMismatchError(f"{path}: not a state dict of tensors")
    return state


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f" (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if state[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listed(unexpected)}")
    if wrong_shape:
        problems.append(f"shape mismatches: {_listed(wrong_shape)}")
    if problems:
        raise WeightsMismatchError("weights do not match the model; " + "; ".join(problems))


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    state = read_state_dict(path)
    check_state_dict(model, state)
    model.load_state_dict(state, strict=True)
    return model


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Write the model's state dict as safetensors (shared tensors are stored once, contiguous)."""
    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(_unshare(state), str(path))
    return path


def _unshare(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors that share storage (tied weights); clone the later aliases
    seen: set[int] = set()
    out = {}
    for key, tensor in state.items():
        ptr = tensor.untyped_storage().data_ptr()
        out[key] = tensor.clone() if ptr in seen and tensor.numel() else tensor
        seen.add(ptr)
    return out
