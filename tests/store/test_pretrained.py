"""Published weights by default: ``zooserve store build`` reads them from the libraries' own caches, offline.

The caches are filled here with weights the test makes, under the libraries' own file names and layouts
(torch.hub's ``$TORCH_HOME/hub/checkpoints/<name>-<hash>.pth``, the Hugging Face hub cache with
``refs/main`` and ``snapshots/<rev>/model.safetensors``, pytorchcv's ``~/.torch/models``). Every build runs
as its own process with HF_HUB_OFFLINE=1, so no hub is ever contacted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest
import timm
import torch
import torchvision
from safetensors.torch import load, save_file

from tests.store.test_build import archive_config
from zooserve.zoo.pretrained import pytorchcv_table_row

TIMM_TAG = "mobilenetv1_100.ra4_e3600_r224_in1k"  # the mobilenet_v1 entry's published weights
REVISION = "0123456789abcdef0123456789abcdef01234567"


def fill_torchvision(torch_home, builder, file_name: str) -> torch.Tensor:
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    state = builder().state_dict()
    torch.save(state, checkpoints / file_name)
    return next(iter(state.values()))


def fill_hugging_face(hf_home) -> torch.Tensor:
    repo = hf_home / "hub" / f"models--timm--{TIMM_TAG}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(REVISION)
    (repo / "snapshots" / REVISION).mkdir(parents=True)
    state = {k: v.contiguous() for k, v in timm.create_model(TIMM_TAG).state_dict().items()}
    save_file(state, str(repo / "snapshots" / REVISION / "model.safetensors"))
    return state["conv_stem.weight"]


def fill_pytorchcv(home) -> torch.Tensor:
    from pytorchcv.model_provider import get_model

    row = pytorchcv_table_row("igcv3_w1")
    store = home / ".torch" / "models"
    store.mkdir(parents=True)
    state = get_model("igcv3_w1").state_dict()
    torch.save(state, store / f"igcv3_w1-{row['error_value']}-{row['checksum'][:8]}.pth")
    return next(iter(state.values()))


def carried(path) -> dict[str, torch.Tensor]:
    with zipfile.ZipFile(path) as archive:
        return load(archive.read("weights.safetensors"))


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    root = tmp_path_factory.mktemp("caches")
    torch.manual_seed(3)
    first = {
        "resnet18": fill_torchvision(root / "torch", torchvision.models.resnet18, "resnet18-f37072fd.pth"),
        "mobilenet_v1": fill_hugging_face(root / "hf"),
        "igcv3_d_1_0": fill_pytorchcv(root / "home"),
    }
    env = os.environ | {"TORCH_HOME": str(root / "torch"), "HF_HOME": str(root / "hf"), "HOME": str(root / "home"),
                        "HF_HUB_OFFLINE": "1", "ZOO_WEIGHTS": "pretrained"}
    return root, env, first


def build(env, store, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zooserve.store", "build", *args, "--store", str(store)],
                          env=env, capture_output=True, text=True, timeout=600)


def test_published_weights_come_from_the_caches_and_one_warning_names_the_rest(caches, tmp_path):
    root, env, first = caches
    run = build(env, tmp_path, "resnet18", "mobilenet_v1", "igcv3_d_1_0", "squeezenet1_0", "crunet116_32x4d")
    assert run.returncode == 0, run.stderr
    for name, tensor in first.items():
        config = archive_config(tmp_path / f"{name}.mar")["zoo"]
        assert config["weights"] == "pretrained", name
        assert any(torch.equal(tensor, value) for value in carried(tmp_path / f"{name}.mar").values()), name
    # squeezenet1_0 has published weights, but not cached and the hubs offline: fixed seed, and said so once
    assert archive_config(tmp_path / "squeezenet1_0.mar")["zoo"]["weights"] == "fixed-seed"
    warnings = [line for line in run.stderr.splitlines() if "FIXED-SEED" in line]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING") and "squeezenet1_0" in warnings[0], run.stderr
    # crunet116_32x4d has no published weights anywhere: fixed seed, and no warning about it
    assert archive_config(tmp_path / "crunet116_32x4d.mar")["zoo"]["weights"] == "fixed-seed"
    assert "crunet116_32x4d" not in warnings[0]

    # once the weights are cached, --if-missing (what `make serve` runs) upgrades that archive, and only it
    fill_torchvision(root / "torch", torchvision.models.squeezenet1_0, "squeezenet1_0-b66bff10.pth")
    rerun = build(env, tmp_path, "resnet18", "squeezenet1_0", "crunet116_32x4d", "--if-missing")
    assert rerun.returncode == 0, rerun.stderr
    assert "1 archive(s) written" in rerun.stdout and "FIXED-SEED" not in rerun.stderr
    assert archive_config(tmp_path / "squeezenet1_0.mar")["zoo"]["weights"] == "pretrained"


def test_zoo_weights_fixed_seed_fetches_nothing(caches, tmp_path):
    _, env, _ = caches
    run = build(env | {"ZOO_WEIGHTS": "fixed-seed"}, tmp_path, "resnet18")
    assert run.returncode == 0 and "FIXED-SEED" not in run.stderr
    assert archive_config(tmp_path / "resnet18.mar")["zoo"]["weights"] == "fixed-seed"
    bad = build(env | {"ZOO_WEIGHTS": "random"}, tmp_path, "resnet18")
    assert bad.returncode == 2 and "ZOO_WEIGHTS must be one of pretrained, fixed-seed, not 'random'" in bad.stderr
