"""The zoo: one registry of every architecture zooserve serves, each with its paper's metadata.

    >>> from zooserve.zoo import create_model, model_info
    >>> model = create_model("resnet152")          # fixed-seed initialization, eval mode
    >>> model_info("resnet152").seed_name
    'ResNet'

The registry (and with it torch) is imported on first use of one of its names, so that the torch-free
modules here (``meta``, ``names``, ``seed``) can be imported alone: the gateway uses them without torch.
"""

from importlib import import_module

from .meta import Figure, ModelInfo, Paper, Preprocess, Pretrained
from .names import UnknownModelError

_FROM_REGISTRY = ("DuplicateModelError", "PretrainedUnavailableError", "create_model", "list_models", "model_info",
                  "register_model")

__all__ = ["Figure", "ModelInfo", "Paper", "Preprocess", "Pretrained", "UnknownModelError", *_FROM_REGISTRY]


def __getattr__(name: str):
    if name in _FROM_REGISTRY:
        return getattr(import_module(".registry", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
