"""Each model's runtime chosen by measurement, the data file builds read, and the build's own check."""

from __future__ import annotations

import json
import os
import random
import zipfile

import pytest
import torch
import yaml

import zooserve.zoo.runtimes as runtime_data
from tests.conftest import requires_cuda
from zooserve.handler.runtimes.onnxruntime import OnnxRuntime
from zooserve.handler.runtimes.openvino import OpenVino
from zooserve.store.__main__ import main as store_cli
from zooserve.handler.service import cpu_threads
from zooserve.store.build import ArchiveOptions, build_archive
import zooserve.store.select as selection
from zooserve.store.select import TOLERANCE, candidates, choose, compare, interleaved, select
from zooserve.zoo.catalog import catalog_entry

NAME = "resnet8_digits"  # about a millisecond per batch: the timing costs little


def archive(path):
    with zipfile.ZipFile(path) as mar:
        return set(mar.namelist()), yaml.safe_load(mar.read("model-config.yaml"))["zoo"]


def forced_failure(*args, **kwargs):
    raise RuntimeError("export forced to fail by the test")


@pytest.fixture
def data_file(tmp_path, monkeypatch):
    """The committed runtimes.json swapped for a file of the test's own."""
    path = tmp_path / "runtimes.json"
    monkeypatch.setattr(runtime_data, "RUNTIMES_FILE", path)
    return path


def test_selection_checks_times_and_picks_the_fastest_that_agrees():
    entry = select(NAME, batch_size=4, threads=1, rounds=3, seconds=0.2)
    records = entry["candidates"]
    assert set(records) == {"eager", "compile", "onnxruntime", "openvino"}
    for key, record in records.items():
        assert record["agrees"], (key, record)
        assert len(record["img_s"]) == 3 and record["median_img_s"] == sorted(record["img_s"])[1]
        if key != "eager":  # checked against eager on the photographs and random inputs
            assert record["top5_identical"] and record["max_abs_diff"] <= TOLERANCE * record["max_abs_logit"]
    fastest = max(records, key=lambda key: records[key]["median_img_s"])
    assert entry["runtime"] == fastest and entry["reason"].startswith(fastest)
    assert entry["device"] == "cpu" and entry["half"] is False and entry["threads"] == 1 and entry["machine"]


def test_a_failed_export_stays_out_and_eager_remains(monkeypatch):
    monkeypatch.setattr(OnnxRuntime, "export", classmethod(forced_failure))
    monkeypatch.setattr(OpenVino, "export", classmethod(forced_failure))
    entry = select(NAME, batch_size=4, threads=1, rounds=1, seconds=0.1, runtimes=("onnxruntime", "openvino"))
    assert entry["runtime"] == "eager"
    for key in ("onnxruntime", "openvino"):
        assert entry["candidates"][key] == {"error": "RuntimeError: export forced to fail by the test", "agrees": False}
        assert f"{key}: failed (RuntimeError: export forced to fail" in entry["reason"]


def test_a_model_too_large_to_hold_every_runtime_loads_each_afresh_for_every_round(monkeypatch):
    loads = []
    load_runtime = selection.load_runtime

    def counted(runtime, *args, **kwargs):
        loads.append(runtime)
        return load_runtime(runtime, *args, **kwargs)

    monkeypatch.setattr(selection, "fits_at_once", lambda name, runtimes: False)
    monkeypatch.setattr(selection, "load_runtime", counted)
    monkeypatch.setattr(selection, "MAX_LOAD_S", float("inf"))  # however busy the machine, both are timed
    entry = select(NAME, batch_size=4, threads=1, rounds=2, seconds=0.1, runtimes=("onnxruntime", "openvino"))
    assert entry["loaded_at_once"] is False
    # once for the check, then once per round
    assert sorted(loads) == ["eager"] * 3 + ["onnxruntime"] * 3 + ["openvino"] * 3
    assert all(len(record["img_s"]) == 2 for record in entry["candidates"].values())
    assert entry["runtime"] in entry["candidates"]

    loads.clear()  # a runtime that cannot start in time is checked, never timed
    monkeypatch.setattr(selection, "starts_in_time", lambda key, record, eager_load_s: key == "eager")
    entry = select(NAME, batch_size=4, threads=1, rounds=2, seconds=0.1, runtimes=("onnxruntime",))
    assert sorted(loads) == ["eager"] * 3 + ["onnxruntime"]
    assert entry["runtime"] == "eager" and "img_s" not in entry["candidates"]["onnxruntime"]
    assert entry["candidates"]["onnxruntime"]["not_timed"] and "s to load it" in entry["reason"]
    assert entry["runtime"] == "eager"


def test_agreement_rule():
    reference = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    assert compare(reference, reference + 4e-3, photos=2)["agrees"]  # 4e-3 <= 1e-3 x 5
    assert not compare(reference, reference + 6e-3, photos=2)["agrees"]
    swapped = reference.clone()
    swapped[0, 3], swapped[0, 4] = 1.0, 2.0  # a 1e-3 x 5 error would not do this, but the rule is explicit
    result = compare(reference, swapped, photos=2)
    assert not result["top5_identical"] and not result["agrees"]
    # float16 (CUDA): kept where it ranks the photographs' top-5 as float32 does, whatever the difference
    half = reference + 0.3
    half[1] = torch.flip(reference[1], [0])  # the second input, random noise, ranks differently
    assert compare(reference, half, photos=1, half=True)["agrees"]


def test_choice_among_records():
    records = {"eager": {"agrees": True, "median_img_s": 10.0},
               "onnxruntime": {"agrees": True, "median_img_s": 14.0},
               "openvino": {"agrees": False, "max_abs_diff": 0.5, "max_abs_logit": 5.0, "top5_identical": False},
               "compile": {"agrees": False, "error": "BackendCompilerFailed: no compiler"}}
    runtime, reason = choose(records)
    assert runtime == "onnxruntime" and reason.startswith("onnxruntime: 1.40x eager, the fastest of eager, onnxruntime")
    assert "openvino: disagrees with eager" in reason and "compile: failed (BackendCompilerFailed" in reason
    records["onnxruntime"]["median_img_s"] = 9.0
    assert choose(records)[0] == "eager"


def test_interleaving_runs_each_once_per_round_in_shuffled_orders():
    log = []
    calls = {key: (lambda key=key: log.append(key) or float(len(log))) for key in "abcd"}
    samples = interleaved(calls, rounds=6, rng=random.Random(1))
    rounds = [log[i:i + 4] for i in range(0, 24, 4)]
    assert all(sorted(r) == list("abcd") for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1, "the order changes between rounds"
    assert {key: len(values) for key, values in samples.items()} == dict.fromkeys("abcd", 6)


@requires_cuda
def test_selection_on_cuda_tries_float16_and_keeps_it_only_where_top5_agrees():
    entry = select(NAME, batch_size=4, threads=1, rounds=2, seconds=0.2, device=torch.device("cuda:0"),
                   runtimes=("onnxruntime",))
    records = entry["candidates"]
    assert {"eager", "eager+fp16", "onnxruntime", "onnxruntime+fp16"} <= set(records)
    assert records["eager+fp16"]["agrees"] == records["eager+fp16"]["top5_identical"]
    assert entry["device"] == "cuda" and entry["half"] == entry["reason"].split(":")[0].endswith("+fp16")


def test_candidates_by_device():
    assert [c.key for c in candidates(torch.device("cpu"))] == ["eager", "compile", "onnxruntime", "openvino"]
    on_cuda = [c.key for c in candidates(torch.device("cuda"))]
    assert on_cuda == ["eager", "compile", "onnxruntime", "eager+fp16", "compile+fp16", "onnxruntime+fp16"]


def test_select_command_writes_the_data_file_builds_and_the_catalog_read(data_file, tmp_path, capsys):
    assert store_cli(["select", NAME, "--runtimes", "openvino", "--rounds", "1", "--seconds", "0.1",
                      "--output", str(data_file)]) == 0
    entry = json.loads(data_file.read_text())["models"][NAME]
    assert set(entry["candidates"]) == {"eager", "openvino"} and capsys.readouterr().out.startswith(f"{NAME}: ")
    # force the entry's choice, as a measurement on another machine may have made it
    document = json.loads(data_file.read_text())
    document["models"][NAME]["runtime"] = "openvino"
    data_file.write_text(json.dumps(document))
    files, zoo = archive(build_archive(NAME, tmp_path / "store"))
    assert {"model.xml", "model.bin"} <= files and zoo["runtime"] == "openvino"
    assert zoo["selection"]["candidates"]["openvino"]["agrees"] is True
    assert catalog_entry(NAME)["runtime"] == "openvino"
    # --runtime overrides the file; an unmeasured model is built on eager
    files, zoo = archive(build_archive(NAME, tmp_path / "store", ArchiveOptions(runtime="onnxruntime")))
    assert "model.onnx" in files and "model.xml" not in files and zoo["runtime"] == "onnxruntime"
    assert zoo["selection"] == {"reason": "--runtime onnxruntime given to the build"}
    files, zoo = archive(build_archive("resnet20_digits", tmp_path / "store"))
    assert zoo["runtime"] == "eager" and zoo["selection"]["reason"].startswith("not measured")
    assert catalog_entry("resnet20_digits")["runtime"] == "eager"


def test_a_failed_export_at_build_leaves_the_archive_on_eager(data_file, tmp_path, monkeypatch):
    monkeypatch.setattr(OpenVino, "export", classmethod(forced_failure))
    files, zoo = archive(build_archive(NAME, tmp_path, ArchiveOptions(runtime="openvino")))
    assert zoo["runtime"] == "eager" and not {"model.xml", "model.bin"} & files
    assert zoo["selection"]["build_fallback"] == ("openvino left for eager: RuntimeError: export forced to fail "
                                                  "by the test")


def test_measured_only_leaves_the_other_models_on_eager(data_file, tmp_path, capsys):
    document = {"models": {name: {"runtime": "onnxruntime", "reason": "set by the test"}
                           for name in (NAME, "resnet20_digits")}}
    data_file.write_text(json.dumps(document))
    store = tmp_path / "store"
    assert store_cli(["build", NAME, "resnet20_digits", "--fixed-seed", "--store", str(store),
                      "--measured-only", NAME]) == 0
    files, zoo = archive(store / f"{NAME}.mar")
    assert "model.onnx" in files and zoo["runtime"] == "onnxruntime"
    files, zoo = archive(store / "resnet20_digits.mar")
    assert "model.onnx" not in files and zoo["runtime"] == "eager"
    assert zoo["selection"]["reason"] == "eager: the build left its measured runtime out (--measured-only)"
    assert store_cli(["build", "resnet20_digits", "--fixed-seed", "--store", str(store), "--measured-only", "all"]) == 0
    assert archive(store / "resnet20_digits.mar")[1]["runtime"] == "onnxruntime"
    with pytest.raises(SystemExit):  # a name not in the registry is refused before anything is built
        store_cli(["build", NAME, "--store", str(store), "--measured-only", "resnet8_digit"])
    assert "resnet8_digit" in capsys.readouterr().err


def test_side_by_side_runs_one_process_per_worker_each_on_its_own_cores(data_file):
    assert store_cli(["select", NAME, "resnet20_digits", "--side-by-side", "--workers", "2", "--runtimes", "onnxruntime",
                      "--rounds", "1", "--seconds", "0.1", "--output", str(data_file)]) == 0
    models = json.loads(data_file.read_text())["models"]
    assert set(models) == {NAME, "resnet20_digits"}
    for entry in models.values():
        assert entry["side_by_side"] == 2 and set(entry["candidates"]) == {"eager", "onnxruntime"}
        assert len(entry["cores"]) == entry["threads"] == cpu_threads(0, 2)
        assert set(entry["cores"]) <= os.sched_getaffinity(0)


def test_a_runtime_slow_to_load_is_not_chosen():
    records = {"eager": {"agrees": True, "load_s": 0.1, "median_img_s": 10.0},
               "compile": {"agrees": True, "load_s": 30.0, "median_img_s": 14.0},
               "onnxruntime": {"agrees": True, "load_s": 0.2, "median_img_s": 12.0}}
    runtime, reason = choose(records)
    assert runtime == "onnxruntime"
    assert reason == ("onnxruntime: 1.20x eager, the fastest of eager, onnxruntime; "
                      "compile: its worker takes 30 s to load it (at most 10 s, or eager's 0.1 s)")
    del records["onnxruntime"]
    assert choose(records)[0] == "eager"
    # a network whose eager worker itself takes long to start (its first batch): no later than eager is no worse
    records["eager"]["load_s"] = 35.0
    assert choose(records)[0] == "compile"
    records["eager"]["load_s"] = 25.0
    assert choose(records)[0] == "eager"


def test_choose_only_applies_the_rule_to_the_figures_in_the_file(data_file):
    records = {"eager": {"agrees": True, "load_s": 0.1, "median_img_s": 10.0},
               "compile": {"agrees": True, "load_s": 30.0, "median_img_s": 14.0}}
    data_file.write_text(json.dumps({"models": {NAME: {"runtime": "compile", "half": False, "reason": "old rule",
                                                       "candidates": records}}}))
    assert store_cli(["select", NAME, "--choose-only", "--output", str(data_file)]) == 0
    entry = json.loads(data_file.read_text())["models"][NAME]
    assert entry["runtime"] == "eager" and entry["candidates"] == records and "30 s to load" in entry["reason"]
