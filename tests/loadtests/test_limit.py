"""The limit's runtimes: those that agree with eager are timed, every other one is left out with why."""

from __future__ import annotations

from loadtests.limit import agreeing_runtimes
from zooserve.handler.runtimes.onnxruntime import OnnxRuntime


def forced_failure(*args, **kwargs):
    raise RuntimeError("export forced to fail by the test")


def test_a_runtime_whose_export_fails_is_left_out_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(OnnxRuntime, "export", classmethod(forced_failure))
    folders, left_out = agreeing_runtimes("resnet8_digits", tmp_path, ("onnxruntime", "openvino"))
    assert set(folders) == {"eager", "openvino"} and all(folder.is_dir() for folder in folders.values())
    assert left_out == {"onnxruntime": "failed (RuntimeError: export forced to fail by the test)"}
