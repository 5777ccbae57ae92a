"""The zoo: one registry of every architecture zooserve serves, each with its paper's metadata.

    >>> from zooserve.zoo import create_model, model_info
    >>> model = create_model("resnet152")          # fixed-seed initialization, eval mode
    >>> model_info("resnet152").seed_name
    'ResNet'
"""

from .meta import Figure, ModelInfo, Paper, Preprocess, Pretrained
from .registry import (
    DuplicateModelError,
    PretrainedUnavailableError,
    UnknownModelError,
    create_model,
    list_models,
    model_info,
    register_model,
)

__all__ = [
    "DuplicateModelError",
    "Figure",
    "ModelInfo",
    "Paper",
    "Preprocess",
    "Pretrained",
    "PretrainedUnavailableError",
    "UnknownModelError",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
]
