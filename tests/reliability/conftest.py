"""One TorchServe for the overload and fault tests (their own: they kill its workers), with the archives they use."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import torchserve_ports
from zooserve.store.build import ArchiveOptions, build_archive
from zooserve.torchserve import TorchServe

# 468M parameters: about 3 s per image on eager on the 2-core build machine; built on eager whatever runtime was
# measured for it (on ONNX Runtime it answered in 0.98 s, too close to the 1 s the fault tests need), which
# also spares CI exporting 1.8 GB
SLOW_MODEL = "amoebanet_a_n6_f448"
# resnet18 with the archives' default workers (two), squeezenet1_0 with one: killing it leaves none;
# the slow model with one, so that its one worker is the one that must not be wedged
WORKERS = {"resnet18": None, "squeezenet1_0": 1, SLOW_MODEL: 1}


@pytest.fixture(scope="session")
def reliability_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("reliability_store")
    for name, workers in WORKERS.items():
        options = ArchiveOptions() if workers is None else ArchiveOptions(workers=workers)
        build_archive(name, store, replace(options, runtime="eager") if name == SLOW_MODEL else options)
    return store


@pytest.fixture(scope="session")
def reliability_torchserve(reliability_store, tmp_path_factory):
    with TorchServe(tmp_path_factory.mktemp("reliability_torchserve"), reliability_store,
                    torchserve_ports()) as server:
        yield server


@pytest.fixture(scope="session", autouse=True)
def _catalog(catalog_snapshot):
    """Every gateway these tests start, in this process or as a process, reads the session's catalog snapshot."""
