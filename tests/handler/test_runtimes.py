"""Each runtime against eager PyTorch, exported as an archive build exports it and loaded as a worker
loads it (the compiled runtime is checked by tests/store/test_select.py, which compiles once)."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import photo, requires_cuda
from zooserve.handler.runtimes import ModelSource, RuntimeOptions, load_runtime, runtime_class
from zooserve.handler.service import ClassifierService, HandlerConfig
from zooserve.store.select import TOLERANCE, Candidate, check_inputs, trial
from zooserve.zoo import create_model

# a pytorchcv network, one of our own implementations and a torchvision one, all small
SMALL = ["resnet8_digits", "metaqnn_cifar10", "squeezenet1_0"]
EXPORTED = ["onnxruntime", "openvino"]
BATCH = 4
CPU = RuntimeOptions(threads=1)


def not_built() -> torch.nn.Module:
    raise AssertionError("a worker of an exported runtime loads the artefact, never the zoo model")


def eager_reference(name, tmp_path):
    inputs, photos = check_inputs(name)
    build = lambda: create_model(name)  # noqa: E731
    _, _, reference = trial(Candidate("eager"), build, tmp_path, inputs, photos, None, CPU, BATCH)
    return build, inputs, photos, reference


@pytest.mark.parametrize("runtime", EXPORTED)
@pytest.mark.parametrize("name", SMALL)
def test_exported_runtime_agrees_with_eager(tmp_path, name, runtime):
    build, inputs, photos, reference = eager_reference(name, tmp_path)
    directory = tmp_path / runtime
    directory.mkdir()
    record, _, logits = trial(Candidate(runtime), build, directory, inputs, photos, reference, CPU, BATCH)
    assert record["agrees"], record
    assert photos >= 10 and record["top5_identical"]
    assert record["max_abs_diff"] <= TOLERANCE * record["max_abs_logit"]
    # a fresh worker loads the artefact alone, at any batch size up to the serving one and beyond
    worker = load_runtime(runtime, ModelSource(directory, not_built), CPU)
    for size in (1, 3, 7):
        assert torch.allclose(worker(inputs[:size]), reference[:size], rtol=0, atol=TOLERANCE * reference.abs().max())


def test_service_on_an_exported_runtime_answers_as_eager_does(tmp_path):
    name = "squeezenet1_0"
    runtime_class("onnxruntime").export(create_model(name), torch.randn(2, 3, 224, 224), tmp_path)
    exported = ClassifierService(HandlerConfig(model=name, runtime="onnxruntime"), tmp_path, torch.device("cpu"))
    eager = ClassifierService(HandlerConfig(model=name), tmp_path, torch.device("cpu"))
    requests = [(photo("chelsea.jpg"), None), (photo("rocket.jpg"), b"3"), (b"junk", None)]
    answers, expected = exported.classify(requests), eager.classify(requests)
    assert [a.status for a in answers] == [200, 200, 415]
    assert answers[0].body["runtime"] == "onnxruntime" and expected[0].body["runtime"] == "eager"
    for got, want in zip(answers[:2], expected[:2]):
        assert [p["index"] for p in got.body["predictions"]] == [p["index"] for p in want.body["predictions"]]
        for a, b in zip(got.body["predictions"], want.body["predictions"]):
            assert a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_openvino_workers_do_not_pin_their_threads(tmp_path):
    """TorchServe runs several worker processes: OpenVINO's default pinning would put them all on the same
    first cores (loadtests/openvino_pinning.py measures what that costs), so a worker never pins."""
    build, inputs, photos, reference = eager_reference(SMALL[0], tmp_path)
    directory = tmp_path / "openvino"
    directory.mkdir()
    record, _, _ = trial(Candidate("openvino"), build, directory, inputs, photos, reference, CPU, BATCH)
    assert record["agrees"], record
    worker = load_runtime("openvino", ModelSource(directory, not_built), RuntimeOptions(threads=1))
    assert worker.compiled.get_property("ENABLE_CPU_PINNING") is False
    assert worker.compiled.get_property("INFERENCE_NUM_THREADS") == 1


def test_unknown_runtime_is_refused():
    with pytest.raises(ValueError, match="unknown runtime 'tensorflow'"):
        runtime_class("tensorflow")
    with pytest.raises(ValueError):
        HandlerConfig(model="resnet18", runtime="tensorflow")


def test_openvino_archive_on_a_cuda_worker_falls_back_to_eager():
    assert not runtime_class("openvino").supports(torch.device("cuda:0"))
    assert runtime_class("onnxruntime").supports(torch.device("cuda:0"))


@requires_cuda
@pytest.mark.skipif("CUDAExecutionProvider" not in __import__("onnxruntime").get_available_providers(),
                    reason="the installed onnxruntime has no CUDA provider (onnxruntime-gpu has)")
@pytest.mark.parametrize("half", [False, True])
def test_onnxruntime_on_cuda_agrees_with_eager_top5(tmp_path, half):
    name = "resnet18"
    gpu = RuntimeOptions(device=torch.device("cuda:0"), half=half)
    build, inputs, photos, reference = eager_reference(name, tmp_path)
    directory = tmp_path / "onnxruntime"
    directory.mkdir()
    record, runtime, _ = trial(Candidate("onnxruntime", half), build, directory, inputs, photos, reference, gpu, BATCH)
    assert record["top5_identical"], record
    assert runtime.on_gpu, "the CUDA or TensorRT provider ran it"
