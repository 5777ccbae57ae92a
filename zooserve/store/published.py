"""The libraries' published weights for one build run (``ZOO_WEIGHTS=pretrained``, the default): read from each
library's cache, or downloaded when its hub answers; each unreachable hub is tried once per run, and the run's
fallbacks to the fixed seed are summed up in one warning."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from zooserve.zoo import PretrainedUnavailableError, create_model, model_info
from zooserve.zoo.pretrained import hubs_offline, is_cached

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
