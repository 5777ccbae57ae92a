"""The registry's contract: one entry per seed row, clear errors, validated metadata, the catalog CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from torch import nn

from zooserve.zoo import (
    DuplicateModelError,
    ModelInfo,
    UnknownModelError,
    create_model,
    list_models,
    model_info,
    register_model,
    registry,
)
from zooserve.zoo.__main__ import main as zoo_cli
from zooserve.zoo.catalog import catalog, models_markdown
from zooserve.zoo.meta import imagenet_preprocess
from zooserve.zoo.seed import seed_rows

ROOT = Path(__file__).resolve().parents[2]


def test_the_seed_table_has_38_rows():
    rows = seed_rows()
    assert len(rows) == 38
    assert rows["Inceptionv4 + Inception-ResNet-v2"].top1 == 83.5
    assert rows["GoogleNet"].top1 is None and rows["GoogleNet"].top5 == 93.33


def test_every_seed_row_has_exactly_one_entry():
    seed_names = [model_info(n).seed_name for n in list_models() if model_info(n).seed_name]
    assert sorted(seed_names) == sorted(seed_rows()), "each seed row needs exactly one registry entry"


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownModelError) as caught:
        create_model("resnet15")
    assert "resnet152" in caught.value.close_matches
    assert str(caught.value).startswith("unknown model 'resnet15'; did you mean")


def test_unknown_name_without_close_match_says_so_plainly():
    with pytest.raises(UnknownModelError, match=r"^unknown model 'zzzz'$"):
        model_info("zzzz")


def _dummy_info(name: str, **overrides) -> ModelInfo:
    fields = dict(
        name=name, family="dummy", paper=model_info("resnet18").paper, variant="dummy", source="torchvision",
        fidelity="library", preprocess=imagenet_preprocess(),
    )
    fields.update(overrides)
    return ModelInfo(**fields)


def test_registering_a_name_twice_is_an_error():
    info = _dummy_info("resnet18")
    with pytest.raises(DuplicateModelError, match="'resnet18' is registered twice"):
        register_model(info)(lambda pretrained=False: nn.Identity())


def test_a_new_entry_is_one_decorator(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_model(_dummy_info("tiny_test_net"))(lambda pretrained=False: nn.Flatten())
    assert "tiny_test_net" in list_models()
    assert isinstance(create_model("tiny_test_net"), nn.Flatten)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"seed_name": "ResNet50"}, "not a row of the seed table"),
        ({"params_tolerance": 0.2}, "needs a params_note"),
        ({"source": "ours", "fidelity": "reconstructed"}, "needs a fidelity_note"),
        ({"source": "ours"}, "fidelity 'library' goes with a library source"),
        ({"name": "ResNet-50"}, "String should match pattern"),
    ],
)
def test_metadata_is_validated(overrides, message):
    with pytest.raises(ValidationError, match=message):
        _dummy_info(overrides.pop("name", "dummy"), **overrides)


def test_seed_accuracy_comes_from_the_table():
    info = model_info("vgg19")
    assert (info.seed_top1, info.seed_top5, info.seed_published_in) == (76.3, 93.2, "ICLR2015")


def test_every_entry_carries_the_required_metadata():
    for entry in catalog():
        assert entry["paper"]["title"] and entry["paper"]["venue"] and entry["variant"], entry["name"]
        assert entry["source"] in ("torchvision", "timm", "pytorchcv", "ours")
        assert entry["fidelity"] in ("library", "paper", "reconstructed")
        assert entry["paper_params"] or entry["params_note"], f"{entry['name']}: paper figure or why none"
        if entry["seed_name"]:
            assert entry["seed_result"], f"{entry['name']}: say which result the seed quotes"


def test_catalog_cli_prints_json(capsys):
    assert zoo_cli(["list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert {e["name"] for e in entries} == set(list_models())
    for key in ("name", "seed_name", "source", "params", "input_size", "num_classes", "fidelity"):
        assert all(key in e for e in entries), key


def test_catalog_cli_prints_a_table(capsys):
    assert zoo_cli(["list", "--seed-only"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["name", "seed", "name"]
    assert len(out) == 2 + 38


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "zooserve.zoo", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "list" in out and "docs" in out


def test_docs_models_md_is_up_to_date():
    committed = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    assert committed == models_markdown(catalog()), "run `python -m zooserve.zoo docs` and commit docs/models.md"
