"""Weights: local files load with checks; published weights go through the libraries' own loaders."""

from __future__ import annotations

import pytest
import torch

from zooserve.zoo import PretrainedUnavailableError, create_model
from zooserve.zoo.weights import WeightsMismatchError, save_weights


def test_fixed_seed_gives_the_same_model_and_another_seed_another():
    a, b, c = create_model("squeezenet1_0", seed=7), create_model("squeezenet1_0", seed=7), create_model(
        "squeezenet1_0", seed=8
    )
    weight = "features.0.weight"
    assert torch.equal(a.state_dict()[weight], b.state_dict()[weight])
    assert not torch.equal(a.state_dict()[weight], c.state_dict()[weight])


def test_plain_state_dict_file_loads_with_weights_only(tmp_path):
    source = create_model("squeezenet1_0", seed=3)
    path = tmp_path / "sq.pt"
    torch.save({"state_dict": source.state_dict(), "epoch": 3}, path)
    loaded = create_model("squeezenet1_0", weights=path)
    assert torch.equal(loaded.state_dict()["classifier.1.weight"], source.state_dict()["classifier.1.weight"])


def test_file_of_another_model_is_rejected_naming_the_mismatches(tmp_path):
    path = save_weights(create_model("squeezenet1_0"), tmp_path / "sq.safetensors")
    with pytest.raises(WeightsMismatchError) as caught:
        create_model("mobilenet_v2", weights=path)
    message = str(caught.value)
    assert "missing keys: " in message and "unexpected keys: " in message
    assert "features.0.0.weight" in message  # a mobilenet_v2 key the file lacks


def test_wrong_shapes_are_named(tmp_path):
    state = create_model("squeezenet1_0").state_dict()
    state["classifier.1.weight"] = torch.zeros(10, 512, 1, 1)
    state["classifier.1.bias"] = torch.zeros(10)
    path = tmp_path / "cifar_head.pt"
    torch.save(state, path)
    with pytest.raises(WeightsMismatchError, match=r"classifier\.1\.bias: file \(10,\) vs model \(1000,\)"):
        create_model("squeezenet1_0", weights=path)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": create_model("squeezenet1_0").state_dict(), "obj": object()}, path)
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        create_model("squeezenet1_0", weights=path)


def test_entry_without_published_weights_says_so():
    with pytest.raises(PretrainedUnavailableError, match="no published weights are known"):
        create_model("squeezenet_bypass", pretrained=True)


@pytest.fixture
def downloads(monkeypatch):
    """Stops the libraries' downloads where they would reach the network, recording what they asked for."""
    asked: list[str] = []

    def refuse(*args, **kwargs):
        asked.append(args[0] if args else kwargs["repo_id"])
        raise OSError("network disabled in tests")

    monkeypatch.setattr("torch.hub.download_url_to_file", refuse)  # torchvision and timm URL weights
    monkeypatch.setattr("timm.models._hub.hf_hub_download", refuse)  # timm Hugging Face Hub weights
    monkeypatch.setenv("TORCH_HOME", "/nonexistent-torch-home")
    # the session keeps the hubs offline, which stops zooserve before any download; here the libraries'
    # download functions themselves are what is intercepted
    monkeypatch.setattr("zooserve.zoo.registry.hubs_offline", lambda: False)
    return asked


def test_torchvision_weights_go_through_torchvision_download(downloads):
    with pytest.raises(PretrainedUnavailableError, match="could not fetch torchvision weights"):
        create_model("resnet18", pretrained=True)
    assert len(downloads) == 1 and downloads[0].endswith("/resnet18-f37072fd.pth")


def test_timm_weights_go_through_the_hugging_face_hub(downloads):
    with pytest.raises(PretrainedUnavailableError, match="could not fetch timm weights 'inception_v4.tf_in1k'"):
        create_model("inception_v4", pretrained=True)
    assert downloads == ["timm/inception_v4.tf_in1k"]


def test_timm_legacy_weights_go_through_their_release_url(downloads):
    with pytest.raises(PretrainedUnavailableError, match="could not fetch timm weights"):
        create_model("xception", pretrained=True)
    assert len(downloads) == 1 and "xception" in downloads[0]


def test_offline_hubs_refuse_uncached_weights_before_any_download(monkeypatch):
    asked = []
    monkeypatch.setattr("torch.hub.download_url_to_file", lambda *args, **kwargs: asked.append(args[0]))
    monkeypatch.setenv("TORCH_HOME", "/nonexistent-torch-home")
    with pytest.raises(PretrainedUnavailableError, match="not cached and the hubs are offline"):
        create_model("resnet18", pretrained=True)
    assert asked == []


def test_pretrained_and_weights_together_are_refused(tmp_path):
    with pytest.raises(ValueError, match="either pretrained=True or weights"):
        create_model("resnet18", pretrained=True, weights=tmp_path / "x.safetensors")
