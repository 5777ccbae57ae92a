"""The CRU-Net authors' MXNet checkpoint (``<prefix>-<epoch>.params``, github.com/cypw/CRU-Net) to safetensors.

    python -m zooserve.zoo.convert.crunet CRU-Net-116-0000.params crunet116.safetensors [--model crunet116_32x4d]

Names follow the authors' symbol code (``BN_AC_Conv`` names a BatchNorm ``<layer>__bn__bn`` and a conv
``<layer>__conv``; shared kernels are the variables ``<stage>_x__<group>_{1x1,3x3}_bases[dim3|dim21]_weight``
and ``<unit>_c1x1-w_weight``); each maps onto one tensor of ``zooserve.zoo.families.crunet`` by the table
below, and the result must cover the model exactly (no tensor missing, none left over, every shape equal).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch

from ..registry import create_model
from ..weights import check_state_dict
from . import write_converted
from .mxnet_params import read_params

BN_FIELDS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_var": "running_var"}
# the layers of a unit, by the authors' names: ResidualFactory (c1x1-a, c3x3-b, c1x1-c, c1x1-w(s/1|2)),
# CRUFactory (c1x1-a, c1x1-b(2), c1x1-c, c1x1-w(s/1), c1x1-w(s/key)); the CRU's c3x3-b(1) has only the
# shared kernel
UNIT_LAYERS = {"c1x1-a": "a", "c3x3-b": "b", "c1x1-b(2)": "b2", "c1x1-c": "c",
               "c1x1-w(s/1)": "w", "c1x1-w(s/2)": "w", "c1x1-w(s/key)": "w"}
UNIT_BN = re.compile(r"^conv(\d)_x__(\d+)_(.+?)__bn__bn_(gamma|beta|moving_mean|moving_var)$")
UNIT_CONV = re.compile(r"^conv(\d)_x__(\d+)_(.+?)__conv_weight$")
UNIT_PROJECTION = re.compile(r"^conv(\d)_x__(\d+)_c1x1-w_weight$")
BASES = re.compile(r"^conv(\d)_x__(?:x|\((\d+)\))_(1x1_bases\[dim3\]|3x3_bases\[dim21\])_weight$")
FIXED = {"conv1_x_1__conv_weight": "stem.conv.weight", "fc6_weight": "fc.weight", "fc6_bias": "fc.bias"}
FIXED_BN = {"conv1_x_1__relu-sp__bn_": "stem.bn.", "conv5_x_x__relu-sp__bn_": "head_bn."}


def _unit(stage: str, unit: str, layer: str) -> str:
    return f"conv{stage}.units.{int(unit) - 1}.{UNIT_LAYERS[layer]}"


def our_name(name: str) -> str:
    """Our state-dict key for one of the authors' parameter names; KeyError for a name the table lacks."""
    if name in FIXED:
        return FIXED[name]
    for prefix, ours in FIXED_BN.items():
        if name.startswith(prefix) and name[len(prefix):] in BN_FIELDS:
            return ours + BN_FIELDS[name[len(prefix):]]
    if (match := UNIT_BN.match(name)) and match[3] in UNIT_LAYERS:
        bn = "bn_key" if match[3] == "c1x1-w(s/key)" else "bn"
        return f"{_unit(*match.groups()[:3])}.{bn}.{BN_FIELDS[match[4]]}"
    if (match := UNIT_CONV.match(name)) and match[3] in UNIT_LAYERS:
        return f"{_unit(*match.groups())}.conv.weight"
    if match := UNIT_PROJECTION.match(name):
        return f"conv{match[1]}.units.{int(match[2]) - 1}.w.weight"
    if match := BASES.match(name):
        return f"conv{match[1]}.bases.{int(match[2] or 1) - 1}.{'dim3' if match[3].startswith('1x1') else 'dim21'}"
    raise KeyError(name)


def convert(params: dict[str, torch.Tensor], model_name: str) -> dict[str, torch.Tensor]:
    """The authors' tensors under our names, checked against the model ``model_name`` tensor by tensor."""
    unknown = []
    state = {}
    for name, tensor in params.items():
        try:
            state[our_name(name)] = tensor.float()
        except KeyError:
            unknown.append(name)
    if unknown:
        raise KeyError(f"names the CRU-Net table does not know: {', '.join(sorted(unknown)[:10])}")
    model = create_model(model_name)
    for key in model.state_dict():  # PyTorch's BN counter has no MXNet counterpart
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
    check_state_dict(model, state)
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zooserve.zoo.convert.crunet", description=__doc__.split("\n")[0])
    parser.add_argument("params", type=Path, help="the authors' MXNet .params file")
    parser.add_argument("output", type=Path, help="safetensors file to write")
    parser.add_argument("--model", default="crunet116_32x4d", help="registry name of the matching model")
    args = parser.parse_args(argv)
    return write_converted(convert(read_params(args.params), args.model), args.model, args.output)


if __name__ == "__main__":
    sys.exit(main())
