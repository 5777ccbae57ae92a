"""schemathesis against the gateway's own OpenAPI document (/openapi.json), served by a real gateway in front
of a real TorchServe: every operation gets the document's examples, the coverage phase's boundary cases and a
bounded number of generated requests, valid and invalid (deterministic: the same ones on every run), and every
answer must be no 5xx and match the schema the document gives for its status.

schemathesis runs as its command line (``schemathesis run``), the way it is meant to be run against a served
document: its pytest integration needs the document at collection time, before a fixture can serve it (and
its lazy loader does not run on pytest 9). The gateway and TorchServe are started the way
tests/gateway/conftest.py starts them (its LoopThread, running_gateway and backend_for), for this module only:
that conftest's session fixtures are not visible from this directory, and this module needs one model
(resnet18, the document's example name).
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tests.conftest import torchserve_ports
from tests.gateway.bad_input_clients import wait_until_loaded
from tests.gateway.conftest import LoopThread, backend_for, running_gateway
from zooserve.gateway.settings import Settings
from zooserve.store.build import ArchiveOptions, build_archive
from zooserve.torchserve import TorchServe

MODEL = "resnet18"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
ROOT = Path(__file__).resolve().parents[2]
OPTIONS = [
    "--checks", "not_a_server_error,response_schema_conformance",
    "--phases", "examples,coverage,fuzzing",  # stateful: the document has no links between operations
    "--max-examples", "30",  # per operation, in the fuzzing phase
    "--seed", "9", "--generation-deterministic",  # the same requests on every run (and no example database)
    "--workers", "1", "--request-timeout", "120", "--continue-on-failure", "--no-color",
]
# most generated model names are the served model, so that requests get past the name check to the rest
CONFIG = f"""
[dictionaries.models]
values = ["{MODEL}"]

[parameters]
"path.model" = {{ dictionary = "models", probability = 0.8 }}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    store = tmp_path_factory.mktemp("schemathesis_store")
    build_archive(MODEL, store, ArchiveOptions())
    loop = LoopThread()
    try:
        with TorchServe(tmp_path_factory.mktemp("schemathesis_torchserve"), store, torchserve_ports()) as torchserve:
            config = Settings(host="127.0.0.1", rest_port=0, grpc_port=0, backends={"local": backend_for(torchserve)})
            with running_gateway(loop, config) as gateway:
                wait_until_loaded(gateway, MODEL)  # the first request's load is not what is being tested
                yield gateway
    finally:
        loop.close()


def test_no_server_error_and_answers_match_the_document(served, tmp_path):
    report, config = tmp_path / "junit.xml", tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    environment = os.environ | {"SCHEMATHESIS_HOOKS": "tests.reliability.schemathesis_hooks"}  # real photographs
    ran = subprocess.run([str(SCHEMATHESIS), "--config-file", str(config), "run", f"{served.url}/openapi.json",
                          *OPTIONS, "--report", "junit", "--report-junit-path", str(report)], cwd=ROOT,
                         env=environment, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stdout[-20000:] + ran.stderr[-5000:]
    operations = list(ElementTree.parse(report).getroot().iter("testcase"))
    document = served.http.get("/openapi.json").json()
    expected = sum(len(methods) for methods in document["paths"].values())
    assert len(operations) == expected >= 21, ran.stdout[-5000:]  # every operation was run...
    assert not [o.get("name") for o in operations if o.find("skipped") is not None], ran.stdout[-5000:]  # ...all


def test_the_document_describes_the_real_bodies(served):
    """What the run depends on: image bodies (raw and multipart) for /predict, JSON and binary for v2 infer,
    and resnet18 as the example model."""
    document = served.http.get("/openapi.json").json()
    predict = document["paths"]["/predict/{model}"]["post"]
    assert set(predict["requestBody"]["content"]) == {"image/*", "application/octet-stream", "multipart/form-data"}
    assert predict["requestBody"]["content"]["multipart/form-data"]["schema"]["required"] == ["image"]
    infer = document["paths"]["/v2/models/{model}/infer"]["post"]
    assert set(infer["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
    example = infer["requestBody"]["content"]["application/json"]["example"]
    model = next(p for p in infer["parameters"] if p["name"] == "model")
    response = served.http.post(f"/v2/models/{model['schema']['examples'][0]}/infer", json=example)
    assert response.status_code == 200 and response.json()["model_name"] == MODEL, response.text
