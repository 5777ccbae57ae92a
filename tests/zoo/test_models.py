"""Every registry entry, built for real: forward shape and finiteness, determinism, size, weights."""

from __future__ import annotations

import pytest
import torch

from zooserve.zoo import create_model, list_models, model_info
from zooserve.zoo.measure import measure
from zooserve.zoo.weights import save_weights

ALL_MODELS = list_models()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_gives_finite_logits_deterministically(name):
    info = model_info(name)
    model = create_model(name)
    x = torch.randn(2, *info.preprocess.input_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        first = model(x)
        second = model(x)
    assert first.shape == (2, info.num_classes)
    assert torch.isfinite(first).all()
    assert torch.equal(first, second), "eval mode must be deterministic"
    assert not torch.equal(first[0], first[1]), "different images must give different logits"


# (entry, "params" or "macs") for every size figure a paper states
SIZE_FIGURES = [(n, kind) for n in ALL_MODELS for kind in ("params", "macs") if getattr(model_info(n), f"paper_{kind}")]


@pytest.mark.parametrize(("name", "kind"), SIZE_FIGURES)
def test_size_matches_the_paper(name, kind):
    """Parameters and multiply-adds within 5% of the paper's figures, or within a tolerance a note explains."""
    info = model_info(name)
    measured = getattr(measure(name), kind)
    stated = getattr(info, f"paper_{kind}")
    assert abs(measured - stated.value) / stated.value <= getattr(info, f"{kind}_tolerance"), (
        f"{name}: {measured:,} {kind} built vs {stated.value:,.0f} in the paper ({stated.where})"
    )


@pytest.mark.parametrize("name", ALL_MODELS)
def test_weights_round_trip_through_safetensors(name, tmp_path):
    saved = create_model(name, seed=1)
    path = save_weights(saved, tmp_path / f"{name}.safetensors")
    loaded = create_model(name, seed=2, weights=path)
    expected = saved.state_dict()
    for key, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, expected[key]), key


@pytest.mark.parametrize("name", ALL_MODELS)
def test_measured_size_is_positive_and_classes_match(name):
    info = model_info(name)
    measured = measure(name)
    assert measured.params > 0 and measured.macs > 0
    assert info.num_classes in (10, 100, 1000)
