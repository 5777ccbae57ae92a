"""Megvii's ShuffleNetV2.Large checkpoint (github.com/megvii-model/ShuffleNet-Series) to safetensors.

    python -m zooserve.zoo.convert.shufflenetv2_large CHECKPOINT.pth.tar ImageNet_1000_scale224_mean.xml OUT.safetensors

The checkpoint is what the reference ``train.py`` saves (``{'state_dict': ...}`` of an ``nn.DataParallel``
model, so every key starts with ``module.``; a bare state dict is taken too). Our parameter names are the
reference's, so the conversion only drops what inference does not use: the training-only auxiliary heads
(``predict_*``) and the second registration of each SE layer (``se_block.0`` / ``se_block.2`` are
``se_fc1`` / ``se_fc2`` again). The mean image of the reference's validation (an OpenCV XML matrix, 224x224x3,
BGR) becomes the model's ``input_mean``.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import torch

from ..registry import create_model
from ..weights import check_state_dict, read_state_dict
from . import write_converted

MODEL = "shufflenet_v2_large"
DROPPED = ("predict_", ".se_block.")


def read_mean_image(path: str | Path) -> torch.Tensor:
    """The (3, 224, 224) BGR mean image from the reference's ``ImageNet_1000_scale224_mean.xml``."""
    data = ElementTree.parse(path).getroot().find("MeanImg/data")
    if data is None or not data.text:
        raise ValueError(f"{path}: no MeanImg/data matrix (expected OpenCV's XML storage format)")
    values = torch.tensor([float(v) for v in data.text.split()], dtype=torch.float32)
    if values.numel() != 224 * 224 * 3:
        raise ValueError(f"{path}: {values.numel()} values, expected 224 x 224 x 3")
    return values.view(224, 224, 3).permute(2, 0, 1).contiguous()


def convert(checkpoint: dict[str, torch.Tensor], mean_image: torch.Tensor) -> dict[str, torch.Tensor]:
    """The reference's tensors under our (the same) names, checked against the model tensor by tensor."""
    state = {k.removeprefix("module."): v for k, v in checkpoint.items()}
    state = {k: v for k, v in state.items() if not any(part in k for part in DROPPED)}
    state["input_mean"] = mean_image
    model = create_model(MODEL)
    for key, value in model.state_dict().items():  # checkpoints of PyTorch < 0.4.1 lack the BN counters
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, torch.zeros_like(value))
    check_state_dict(model, state)
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zooserve.zoo.convert.shufflenetv2_large",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path, help="the reference's checkpoint (.pth.tar or a state dict)")
    parser.add_argument("mean_xml", type=Path, help="ImageNet_1000_scale224_mean.xml from the reference")
    parser.add_argument("output", type=Path, help="safetensors file to write")
    args = parser.parse_args(argv)
    state = convert(read_state_dict(args.checkpoint), read_mean_image(args.mean_xml))
    return write_converted(state, MODEL, args.output)


if __name__ == "__main__":
    sys.exit(main())
