"""The converters from the official checkpoint formats, on checkpoints made here in those formats.

CRU-Net: an MXNet ``.params`` file written byte for byte in MXNet's NDArray list format, with the
parameter names and shapes the authors' symbol code gives CRU-Net-116 (``ResidualFactory``, ``CRUFactory``,
``DeclearWeights``, ``BN_AC_Conv`` naming). ShuffleNetV2.Large: a ``train.py``-style checkpoint
(``{'state_dict': ...}`` of an ``nn.DataParallel`` model, auxiliary heads and SE duplicates included) and
an OpenCV XML mean image.
"""

from __future__ import annotations

import struct

import pytest
import torch
from safetensors.torch import load_file

from zooserve.zoo import create_model
from zooserve.zoo.convert import crunet as crunet_convert
from zooserve.zoo.convert import shufflenetv2_large as large_convert
from zooserve.zoo.convert.mxnet_params import MXNetFormatError, read_params
from zooserve.zoo.families.shufflenetv2 import ShuffleNetV2Large
from zooserve.zoo.weights import WeightsMismatchError

BN_ARGS, BN_AUX = ("gamma", "beta"), ("moving_mean", "moving_var")


def bn(name: str, channels: int) -> dict[str, tuple[str, tuple[int, ...]]]:
    """A ``BN_AC_Conv``/``BN_AC`` BatchNorm: gamma and beta are arguments, the moving statistics auxiliary."""
    return {f"{name}_{field}": ("arg" if field in BN_ARGS else "aux", (channels,)) for field in BN_ARGS + BN_AUX}


def residual_unit(name: str, c_in: int, width: int, channels: int, groups: int, proj: bool):
    """``ResidualFactory``'s parameters: c1x1-w (shared variable, BN'd at its stride), c1x1-a, c3x3-b, c1x1-c."""
    shapes = {}
    if proj:
        stride = 1 if name.startswith("conv2") else 2
        shapes |= {f"{name}_c1x1-w_weight": ("arg", (channels, c_in, 1, 1))} | bn(f"{name}_c1x1-w(s/{stride})__bn__bn", c_in)
    shapes |= bn(f"{name}_c1x1-a__bn__bn", c_in) | {f"{name}_c1x1-a__conv_weight": ("arg", (width, c_in, 1, 1))}
    shapes |= bn(f"{name}_c3x3-b__bn__bn", width) | {f"{name}_c3x3-b__conv_weight": ("arg", (width, width // groups, 3, 3))}
    shapes |= bn(f"{name}_c1x1-c__bn__bn", width) | {f"{name}_c1x1-c__conv_weight": ("arg", (channels, width, 1, 1))}
    return shapes


def cru_unit(name: str, c_in: int, width: int, channels: int, down: bool):
    """``CRUFactory``'s own parameters (the shared 1x1 and 3x3 kernels are the group's)."""
    shapes = {}
    if down:
        shapes |= {f"{name}_c1x1-w_weight": ("arg", (channels, c_in, 1, 1))}
        shapes |= bn(f"{name}_c1x1-w(s/1)__bn__bn", c_in) | bn(f"{name}_c1x1-w(s/key)__bn__bn", c_in)
    shapes |= bn(f"{name}_c1x1-a__bn__bn", channels)
    shapes |= bn(f"{name}_c1x1-b(2)__bn__bn", width) | {f"{name}_c1x1-b(2)__conv_weight": ("arg", (width, width, 1, 1))}
    shapes |= bn(f"{name}_c1x1-c__bn__bn", width) | {f"{name}_c1x1-c__conv_weight": ("arg", (channels, width, 1, 1))}
    return shapes


def bases(prefix: str, width: int, channels: int):
    return {f"{prefix}_1x1_bases[dim3]_weight": ("arg", (width, channels, 1, 1)),
            f"{prefix}_3x3_bases[dim21]_weight": ("arg", (width, 1, 3, 3))}


def crunet116_official_shapes() -> dict[str, tuple[str, tuple[int, ...]]]:
    """CRU-Net-116 (k_D = 128, 176; R = 32) as the authors' ``get_before_pool`` declares it."""
    shapes = {"conv1_x_1__conv_weight": ("arg", (64, 3, 7, 7))} | bn("conv1_x_1__relu-sp__bn", 64)
    for i in range(1, 4):
        shapes |= residual_unit(f"conv2_x__{i}", 64 if i == 1 else 256, 128, 256, 32, proj=i == 1)
    shapes |= bases("conv3_x__x", 352, 512)
    for i in range(1, 7):
        shapes |= cru_unit(f"conv3_x__{i}", 256 if i == 1 else 512, 352, 512, down=i == 1)
    for i in range(1, 19):
        if i % 6 == 1:
            shapes |= bases(f"conv4_x__({i // 6 + 1})", 704, 1024)
        shapes |= cru_unit(f"conv4_x__{i}", 512 if i == 1 else 1024, 704, 1024, down=i == 1)
    for i in range(1, 4):
        shapes |= residual_unit(f"conv5_x__{i}", 1024 if i == 1 else 2048, 1024, 2048, 32, proj=i == 1)
    shapes |= bn("conv5_x_x__relu-sp__bn", 2048)
    return shapes | {"fc6_weight": ("arg", (1000, 2048)), "fc6_bias": ("arg", (1000,))}


def write_mxnet_params(path, arrays: dict[str, torch.Tensor]) -> None:
    """MXNet's NDArray list format (``mx.nd.save``): list magic, V2 arrays (dense, CPU, float32), names."""
    out = [struct.pack("<QQ", 0x112, 0), struct.pack("<Q", len(arrays))]
    for tensor in arrays.values():
        out.append(struct.pack("<Iii", 0xF993FAC9, 0, tensor.dim()) + struct.pack(f"<{tensor.dim()}q", *tensor.shape))
        out.append(struct.pack("<iii", 1, 0, 0) + tensor.numpy().astype("<f4").tobytes())
    out.append(struct.pack("<Q", len(arrays)))
    for name in arrays:
        out.append(struct.pack("<Q", len(name.encode())) + name.encode())
    path.write_bytes(b"".join(out))


@pytest.fixture(scope="module")
def crunet_checkpoint(tmp_path_factory):
    generator = torch.Generator().manual_seed(0)
    arrays = {f"{kind}:{name}": torch.randn(shape, generator=generator) * 0.05
              for name, (kind, shape) in crunet116_official_shapes().items()}
    for name in [n for n in arrays if n.endswith("moving_var")]:
        arrays[name] = arrays[name].abs() + 1  # a variance
    path = tmp_path_factory.mktemp("crunet") / "CRU-Net-116-0000.params"
    write_mxnet_params(path, arrays)
    return path, {name.split(":", 1)[1]: tensor for name, tensor in arrays.items()}


def test_mxnet_params_are_read_back_as_written(crunet_checkpoint):
    path, arrays = crunet_checkpoint
    read = read_params(path)
    assert read.keys() == arrays.keys()
    assert all(torch.equal(read[k], arrays[k]) for k in arrays)


def test_not_an_mxnet_file_is_refused(tmp_path):
    path = tmp_path / "x.params"
    path.write_bytes(b"PK\x03\x04 not mxnet at all")
    with pytest.raises(MXNetFormatError, match="not an MXNet NDArray list"):
        read_params(path)


def test_crunet_official_checkpoint_converts_one_to_one(crunet_checkpoint, tmp_path):
    path, arrays = crunet_checkpoint
    out = tmp_path / "crunet116.safetensors"
    assert crunet_convert.main([str(path), str(out), "--model", "crunet116_32x4d"]) == 0
    model = create_model("crunet116_32x4d", weights=out)
    state = model.state_dict()
    # every official tensor has exactly one place; spot checks that each kind landed where it belongs
    assert len(arrays) == len([k for k in state if not k.endswith("num_batches_tracked")])
    assert torch.equal(state["conv4.bases.1.dim21"], arrays["conv4_x__(2)_3x3_bases[dim21]_weight"])
    assert torch.equal(state["conv3.units.0.w.bn_key.running_var"],
                       arrays["conv3_x__1_c1x1-w(s/key)__bn__bn_moving_var"])
    assert torch.equal(state["conv5.units.0.w.weight"], arrays["conv5_x__1_c1x1-w_weight"])
    assert torch.equal(state["conv3.units.5.b2.conv.weight"], arrays["conv3_x__6_c1x1-b(2)__conv_weight"])
    assert torch.equal(state["head_bn.weight"], arrays["conv5_x_x__relu-sp__bn_gamma"])
    assert torch.equal(model.fc.bias, arrays["fc6_bias"])
    # units 7-12 of conv4 share the second group's kernels: one tensor, read by six units
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert torch.isfinite(model(x)).all()


def test_crunet_checkpoint_with_a_foreign_name_is_refused(crunet_checkpoint):
    _, arrays = crunet_checkpoint
    with pytest.raises(KeyError, match="conv9_x__1_mystery_weight"):
        crunet_convert.convert(arrays | {"conv9_x__1_mystery_weight": torch.zeros(1)}, "crunet116_32x4d")
    incomplete = {k: v for k, v in arrays.items() if k != "fc6_bias"}
    with pytest.raises(WeightsMismatchError, match="missing keys: fc.bias"):
        crunet_convert.convert(incomplete, "crunet116_32x4d")


# keys and shapes of the reference's network.py, written out by hand from it (stage 4 is features.2,
# its 23rd block '4w'; stride-2 blocks have 'down'; SE layers are registered twice)
REFERENCE_KEYS = {
    "module.first_conv.0.conv.weight": (64, 3, 3, 3),
    "module.features.0.2a.proj.conv.weight": (128, 64, 3, 3),
    "module.features.0.2a.se_block.0.weight": (128, 128),
    "module.features.2.4w.branch_main.1.conv.weight": (512, 64, 3, 3),
    "module.features.3.5a.down.conv.weight": (2048, 2048, 1, 1),
    "module.features.3.5j.se_fc2.bias": (1024,),
    "module.predict_14.conv.1.conv.weight": (1024, 1024, 3, 3),
    "module.conv_last.conv.weight": (1280, 2048, 3, 3),
    "module.fc.weight": (1000, 1280),
}


def reference_checkpoint() -> dict[str, torch.Tensor]:
    """A train.py-style state dict: DataParallel prefixes, auxiliary heads, SE layers under both names."""
    state = {k: v for k, v in ShuffleNetV2Large(aux_heads=True).state_dict().items() if k != "input_mean"}
    for key in [k for k in state if ".se_fc" in k]:
        state[key.replace(".se_fc1.", ".se_block.0.").replace(".se_fc2.", ".se_block.2.")] = state[key]
    return {f"module.{k}": v for k, v in state.items()}


def test_shufflenetv2_large_reference_checkpoint_converts(tmp_path):
    torch.manual_seed(0)
    checkpoint = reference_checkpoint()
    for key, shape in REFERENCE_KEYS.items():
        assert tuple(checkpoint[key].shape) == shape, key
    torch.save({"state_dict": checkpoint, "optimizer_state_dict": {"state": {}, "param_groups": []}},
               tmp_path / "checkpoint-150000.pth.tar")
    mean = torch.rand(224, 224, 3) * 30 + 100  # H x W x BGR, as OpenCV stores it
    values = " ".join(f"{v:.6e}" for v in mean.flatten().tolist())
    (tmp_path / "mean.xml").write_text(
        '<?xml version="1.0"?>\n<opencv_storage>\n<Channel>3</Channel>\n<Row>224</Row>\n<Col>224</Col>\n'
        '<MeanImg type_id="opencv-matrix">\n<rows>1</rows>\n<cols>150528</cols>\n<dt>f</dt>\n'
        f"<data>\n{values}</data></MeanImg>\n"
        "</opencv_storage>\n")
    out = tmp_path / "large.safetensors"
    assert large_convert.main([str(tmp_path / "checkpoint-150000.pth.tar"), str(tmp_path / "mean.xml"), str(out)]) == 0
    converted = load_file(str(out))
    assert not any(k.startswith("predict_") or ".se_block." in k for k in converted)
    assert torch.equal(converted["features.2.4w.branch_main.1.conv.weight"],
                       checkpoint["module.features.2.4w.branch_main.1.conv.weight"])
    assert torch.allclose(converted["input_mean"], mean.permute(2, 0, 1), rtol=1e-6)
    create_model("shufflenet_v2_large", weights=out)  # loads strictly


def test_shufflenetv2_large_with_aux_heads_has_the_published_count():
    """The README's 140.7M parameters are the network with its three training-only classifiers."""
    with torch.device("meta"):
        model = ShuffleNetV2Large(aux_heads=True)
    assert abs(sum(p.numel() for p in model.parameters()) - 140.7e6) / 140.7e6 < 0.001
