"""Archives: every registry entry packs into a .mar with the one handler and its own config."""

from __future__ import annotations

import zipfile

import pytest
import yaml

from zooserve.store.__main__ import main as store_cli
from zooserve.store.build import WORKERS, ArchiveOptions, build_archive
from zooserve.zoo import create_model, list_models
from zooserve.zoo.weights import save_weights


def archive_config(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return yaml.safe_load(archive.read("model-config.yaml"))


def test_every_registry_entry_has_a_buildable_archive(tmp_path, capsys):
    # on eager: the packaging of every entry, without exporting the measured runtimes (tests/store/test_select.py
    # and tests/e2e/test_runtimes.py build archives that carry an exported artefact)
    assert store_cli(["build", "--all", "--runtime", "eager", "--store", str(tmp_path)]) == 0
    assert "archive(s) written" in capsys.readouterr().out
    for name in list_models():
        path = tmp_path / f"{name}.mar"
        with zipfile.ZipFile(path) as archive:
            files = set(archive.namelist())
        assert {"zoo_handler.py", "model-config.yaml", "MAR-INF/MANIFEST.json"} <= files, name
        assert not any(f.endswith(".safetensors") for f in files), f"{name}: fixed-seed archives carry no weights"
        config = archive_config(path)
        assert config["zoo"]["model"] == name and config["zoo"]["weights"] == "fixed-seed"
        assert config["batchSize"] >= 1 and config["minWorkers"] == config["maxWorkers"] == WORKERS
        assert path.stat().st_size < 64 * 1024, "an archive without weights stays small"


def test_if_missing_skips_existing_archives(tmp_path, capsys):
    store_cli(["build", "resnet18", "--store", str(tmp_path)])
    capsys.readouterr()
    assert store_cli(["build", "resnet18", "squeezenet1_0", "--if-missing", "--store", str(tmp_path)]) == 0
    assert "1 archive(s) written" in capsys.readouterr().out


def test_given_weights_are_checked_and_carried(tmp_path):
    weights = save_weights(create_model("squeezenet1_0", seed=5), tmp_path / "trained.safetensors")
    path = build_archive("squeezenet1_0", tmp_path / "store", ArchiveOptions(weights={"squeezenet1_0": weights}))
    with zipfile.ZipFile(path) as archive:
        assert "weights.safetensors" in archive.namelist()
    zoo = archive_config(path)["zoo"]
    assert zoo["weights"] == "file" and zoo["weights_file"] == "weights.safetensors"


def test_weights_of_another_model_are_refused_at_build(tmp_path):
    weights = save_weights(create_model("squeezenet1_0"), tmp_path / "sq.safetensors")
    with pytest.raises(ValueError, match="weights do not match the model"):
        build_archive("resnet18", tmp_path / "store", ArchiveOptions(weights={"resnet18": weights}))
    assert not (tmp_path / "store" / "resnet18.mar").exists()


def test_unknown_name_is_refused_with_close_matches(tmp_path, capsys):
    assert store_cli(["build", "resnet19", "--store", str(tmp_path)]) == 2
    assert "unknown model 'resnet19'; did you mean resnet18" in capsys.readouterr().err


def test_batch_settings_reach_the_archive(tmp_path):
    path = build_archive("resnet18", tmp_path, ArchiveOptions(batch_size=8, max_batch_delay_ms=10))
    config = archive_config(path)
    assert (config["batchSize"], config["maxBatchDelay"]) == (8, 10)


def test_build_writes_the_catalog_snapshot_beside_the_archives(tmp_path, capsys):
    """Every registry entry, what each archive in the store carries, class names; kept while it is current."""
    from zooserve import snapshot
    from zooserve.zoo.labels import class_names
    from zooserve.zoo.runtimes import chosen_runtime

    build_archive("squeezenet1_0", tmp_path, ArchiveOptions(workers=1))
    assert store_cli(["build", "resnet18", "--store", str(tmp_path)]) == 0
    assert "catalog snapshot written" in capsys.readouterr().out
    written = snapshot.read(tmp_path / snapshot.FILE_NAME)
    entries = {entry.name: entry for entry in written.models}
    assert sorted(entries) == list_models() and written.format == snapshot.FORMAT
    assert entries["resnet18"].archive == snapshot.Archive(weights="fixed-seed", workers=WORKERS,
                                                           runtime=chosen_runtime("resnet18"))
    assert entries["squeezenet1_0"].archive.workers == 1 and entries["vgg19"].archive is None
    squeezenet = entries["squeezenet1_0"]
    assert squeezenet.memory_bytes == snapshot.estimated_bytes(squeezenet.params, 1, squeezenet.archive.runtime,
                                                               macs=squeezenet.macs)
    assert written.labels["imagenet-1k"] == list(class_names("imagenet-1k"))
    assert entries["resnet18"].row()["preprocess"]["input_size"] == [3, 224, 224]
    assert store_cli(["build", "resnet18", "--if-missing", "--store", str(tmp_path)]) == 0
    assert "catalog snapshot written" not in capsys.readouterr().out  # nothing built, the snapshot current


def test_a_snapshot_of_another_format_is_refused_with_what_to_do(tmp_path):
    from zooserve import snapshot

    (tmp_path / "catalog.json").write_text('{"format": 99}')
    with pytest.raises(snapshot.SnapshotError, match="format 99; this zooserve reads format 1: build the archives"):
        snapshot.read(tmp_path / "catalog.json")
    with pytest.raises(snapshot.SnapshotError, match="no catalog snapshot at"):
        snapshot.read(tmp_path / "none.json")
