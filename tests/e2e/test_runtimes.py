"""Archives that carry an exported runtime, served over REST by a real TorchServe, answering as eager does."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import photo, torchserve_ports
from zooserve.handler.runtimes import RUNTIME_NAMES
from zooserve.store.build import ArchiveOptions, build_archive
from zooserve.torchserve import TorchServe

pytestmark = pytest.mark.e2e

MODEL = "resnet8_digits"
PHOTOS = ("chelsea.jpg", "rocket.jpg", "coffee.png")


@pytest.fixture(scope="module")
def torchserve(tmp_path_factory):
    """One archive of the model per runtime, each under its own file name (the model name stays the same
    inside: it is registered under a name of its own)."""
    store = tmp_path_factory.mktemp("runtime_store")
    for runtime in RUNTIME_NAMES:
        built = build_archive(MODEL, tmp_path_factory.mktemp(runtime), ArchiveOptions(runtime=runtime, workers=1))
        built.rename(store / f"{MODEL}_{runtime}.mar")
    with TorchServe(tmp_path_factory.mktemp("torchserve"), store, torchserve_ports()) as server:
        yield server


@pytest.fixture(scope="module")
def answers(torchserve):
    """runtime -> the REST answers to the photographs, each runtime registered in turn (one worker)."""
    keys = torchserve.keys()
    management = httpx.Client(base_url=torchserve.management_url, timeout=600,
                              headers={"Authorization": f"Bearer {keys.management}"})
    inference = httpx.Client(base_url=torchserve.inference_url, timeout=600,
                             headers={"Authorization": f"Bearer {keys.inference}"})
    found = {}
    with management, inference:
        for runtime in RUNTIME_NAMES:
            name = f"{MODEL}_{runtime}"
            registered = management.post("/models", params={"url": f"{name}.mar", "model_name": name,
                                                            "initial_workers": 1, "synchronous": "true"})
            assert registered.status_code == 200, registered.text
            found[runtime] = [inference.post(f"/predictions/{name}", content=photo(p),
                                             headers={"Content-Type": "application/octet-stream"}) for p in PHOTOS]
            found[runtime].append(inference.post(f"/predictions/{name}", content=b"not an image"))
            assert management.delete(f"/models/{name}").status_code == 200
    return found


@pytest.mark.parametrize("runtime", RUNTIME_NAMES)
def test_exported_runtime_serves_over_rest_as_eager_does(answers, runtime):
    *served, bad = answers[runtime]
    assert bad.status_code == 415 and bad.json()["error"]["code"] == "not_an_image"
    for response, expected in zip(served, answers["eager"]):
        assert response.status_code == 200, response.text
        body, eager = response.json(), expected.json()
        assert body["runtime"] == runtime and body["model"] == MODEL
        assert [p["index"] for p in body["predictions"]] == [p["index"] for p in eager["predictions"]]
        for got, want in zip(body["predictions"], eager["predictions"]):
            assert got["score"] == pytest.approx(want["score"], abs=1e-4)
