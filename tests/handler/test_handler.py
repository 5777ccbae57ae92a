"""The TorchServe handler, driven through TorchServe's own Context and RequestProcessor classes."""

from __future__ import annotations

import json

import pytest
import torch
from ts.context import Context, RequestProcessor

from tests.conftest import photo, requires_cuda
from zooserve.handler.service import ClassifierService, HandlerConfig, choose_device, cpu_threads
from zooserve.handler.zoo_handler import ZooHandler
from zooserve.zoo import create_model
from zooserve.zoo.weights import save_weights


def make_context(tmp_path, zoo: dict, gpu=None) -> Context:
    yaml_config = {"minWorkers": 1, "maxWorkers": 1, "batchSize": 4, "zoo": zoo}
    return Context(zoo["model"], str(tmp_path), {}, 4, gpu, "0.12.0", model_yaml_config=yaml_config)


def run_batch(handler: ZooHandler, context: Context, items: list[dict], headers: list[dict] | None = None):
    """Sends one batch as TorchServe would; returns [(status, body)] per request."""
    headers = headers or [{} for _ in items]
    context.request_processor = [RequestProcessor(h) for h in headers]
    outputs = handler.handle(items, context)
    assert len(outputs) == len(items), "one answer per request"
    return [(context.get_response_status(i)[0], json.loads(out)) for i, out in enumerate(outputs)]


@pytest.fixture(scope="module")
def resnet18_handler(tmp_path_factory):
    context = make_context(tmp_path_factory.mktemp("resnet18"), {"model": "resnet18"})
    handler = ZooHandler()
    handler.initialize(context)
    return handler, context


def test_a_bad_request_never_fails_its_batch(resnet18_handler):
    handler, context = resnet18_handler
    answers = run_batch(
        handler, context, [{"body": photo("chelsea.jpg")}, {"body": b"not an image at all"}, {"data": photo("chelsea.png")}]
    )
    assert [status for status, _ in answers] == [200, 415, 200]
    assert answers[1][1] == {
        "error": {"code": "not_an_image", "message": "not an image: the body is not in any image format we read",
                  "status": 415}
    }
    for status, body in (answers[0], answers[2]):
        assert body["model"] == "resnet18" and body["version"] == "1.0"
        assert body["weights"] == "fixed-seed" and body["pretrained"] is False
        assert len(body["predictions"]) == 5


def test_batched_answers_equal_single_answers(resnet18_handler):
    handler, context = resnet18_handler
    single = run_batch(handler, context, [{"body": photo("rocket.jpg")}])[0][1]
    batched = run_batch(handler, context, [{"body": photo("chelsea.jpg")}, {"body": photo("rocket.jpg")}])[1][1]
    assert [p["index"] for p in single["predictions"]] == [p["index"] for p in batched["predictions"]]
    for a, b in zip(single["predictions"], batched["predictions"]):
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)


@pytest.mark.parametrize(
    "name", ["chelsea_progressive.jpg", "coffee_cmyk.jpg", "astronaut_rgba.png", "camera.png", "coffee.webp", "rocket.bmp"]
)
def test_every_photograph_format_is_classified(resnet18_handler, name):
    handler, context = resnet18_handler
    [(status, body)] = run_batch(handler, context, [{"body": photo(name)}])
    assert status == 200
    scores = [p["score"] for p in body["predictions"]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1


def test_derived_formats_are_classified(resnet18_handler, derived_images):
    handler, context = resnet18_handler
    answers = run_batch(handler, context, [{"body": data} for data in derived_images.values()])
    assert [status for status, _ in answers] == [200] * len(derived_images)


def test_topk_from_header_and_form_field(resnet18_handler):
    handler, context = resnet18_handler
    answers = run_batch(
        handler, context,
        [{"body": photo("chelsea.jpg")}, {"image": photo("chelsea.jpg"), "topk": b"2"}],
        headers=[{"X-Topk": "3"}, {}],
    )
    assert [len(body["predictions"]) for _, body in answers] == [3, 2]
    labels = [p["label"] for p in answers[0][1]["predictions"]]
    assert all(isinstance(label, str) and label for label in labels)


@pytest.mark.parametrize("topk", ["0", "1001", "abc", "-1"])
def test_bad_topk_is_a_400_with_a_message(resnet18_handler, topk):
    handler, context = resnet18_handler
    [(status, body)] = run_batch(handler, context, [{"body": photo("chelsea.jpg")}], headers=[{"X-Topk": topk}])
    assert status == 400
    assert body["error"]["message"] == f"topk must be a whole number from 1 to 1000, not {topk!r}"


def test_image_over_the_pixel_cap_is_a_413(tmp_path):
    context = make_context(tmp_path, {"model": "squeezenet1_0", "max_pixels": 200_000, "warmup": False})
    handler = ZooHandler()
    handler.initialize(context)
    answers = run_batch(handler, context, [{"body": photo("chelsea.jpg")}, {"body": photo("camera.png")}])
    assert answers[0][0] == 200
    assert answers[1] == (413, {"error": {"code": "image_too_large", "status": 413,
                                          "message": "image too large: 512x512 > limit of 200000 pixels"}})


def test_cifar_model_answers_with_cifar_labels(tmp_path):
    context = make_context(tmp_path, {"model": "fractalnet_cifar100", "topk": 100})
    handler = ZooHandler()
    handler.initialize(context)
    [(status, body)] = run_batch(handler, context, [{"body": photo("chelsea.jpg")}])
    assert status == 200 and body["label_set"] == "cifar-100"
    assert sorted(p["label"] for p in body["predictions"])[:2] == ["apple", "aquarium_fish"]
    assert sum(p["score"] for p in body["predictions"]) == pytest.approx(1, abs=1e-3)


def test_weights_file_in_the_archive_is_used_and_reported(tmp_path):
    trained = create_model("squeezenet1_0", seed=123)
    save_weights(trained, tmp_path / "weights.safetensors")
    config = HandlerConfig(model="squeezenet1_0", weights="file", weights_file="weights.safetensors", warmup=False)
    service = ClassifierService(config, tmp_path, torch.device("cpu"))
    assert torch.equal(service.runtime.model.state_dict()["features.0.weight"], trained.state_dict()["features.0.weight"])
    [outcome] = service.classify([(photo("chelsea.jpg"), None)])
    assert outcome.body["weights"] == "file" and outcome.body["pretrained"] is False


def test_config_requires_a_file_for_real_weights():
    with pytest.raises(ValueError, match="weights_file goes with weights 'file' or 'pretrained'"):
        HandlerConfig(model="resnet18", weights="pretrained")


def test_cpu_path_settings():
    assert choose_device(None) == torch.device("cpu")
    assert cpu_threads(0, workers=1) >= 1
    assert cpu_threads(3, workers=2) == 3


@requires_cuda
def test_gpu_path_uses_half_precision_channels_last(tmp_path):
    context = make_context(tmp_path, {"model": "resnet18"}, gpu=0)
    handler = ZooHandler()
    handler.initialize(context)
    service = handler.service
    assert service.device.type == "cuda" and service.dtype == torch.float16
    weight = service.runtime.model.conv1.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    answers = run_batch(handler, context, [{"body": photo("chelsea.jpg")}, {"body": b"junk"}])
    assert [status for status, _ in answers] == [200, 415]


@requires_cuda
def test_gpu_decodes_jpeg_with_nvjpeg_and_agrees_with_the_cpu(tmp_path):
    from zooserve.handler.decode import decode

    device = torch.device("cuda:0")
    on_gpu, on_cpu = decode(photo("chelsea.jpg"), device=device), decode(photo("chelsea.jpg"))
    assert on_gpu.is_cuda and on_gpu.shape == on_cpu.shape
    # nvJPEG and libjpeg-turbo may round IDCTs differently, by a level or two
    assert (on_gpu.cpu().int() - on_cpu.int()).abs().float().mean() < 2
    assert not decode(photo("astronaut.png"), device=device).is_cuda  # PNG stays on the CPU decoders


@requires_cuda
def test_gpu_batch_mixes_gpu_and_cpu_decoded_images_and_matches_cpu_top1(tmp_path):
    gpu = ZooHandler()
    gpu.initialize(make_context(tmp_path / "gpu", {"model": "resnet18"}, gpu=0))
    cpu = ZooHandler()
    cpu.initialize(make_context(tmp_path / "cpu", {"model": "resnet18"}))
    requests = [{"body": photo("chelsea.jpg")}, {"body": photo("astronaut.png")}]
    on_gpu = run_batch(gpu, make_context(tmp_path / "gpu", {"model": "resnet18"}, gpu=0), requests)
    on_cpu = run_batch(cpu, make_context(tmp_path / "cpu", {"model": "resnet18"}), requests)
    assert [status for status, _ in on_gpu] == [200, 200]
    # float16 on the GPU, float32 on the CPU, same fixed-seed weights: the same best class
    assert [b["predictions"][0]["index"] for _, b in on_gpu] == [b["predictions"][0]["index"] for _, b in on_cpu]
