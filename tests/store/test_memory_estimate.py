"""The gateway's memory budget holds only if the catalog's estimate of a model's workers covers what they
really hold: checked against the worker memory measured in a real TorchServe on each runtime."""

from __future__ import annotations

import json

import pytest

from zooserve import snapshot
from zooserve.store.build import ROOT
from zooserve.zoo.catalog import catalog_entry

PROFILE = ROOT / "docs" / "serving-profile.json"  # every entry, each on its measured runtime
ROWS = json.loads(PROFILE.read_text())["rows"]


@pytest.mark.parametrize("row", ROWS, ids=[row["name"] for row in ROWS])
def test_the_estimate_covers_the_measured_worker(row):
    entry = catalog_entry(row["name"])
    estimate = snapshot.estimated_bytes(entry["params"], 1, row["runtime"], macs=entry["macs"])
    measured = row["rss_mib"] * snapshot.MiB
    assert measured <= estimate <= 1.5 * measured, (row, estimate / snapshot.MiB)


def test_the_profile_covers_each_runtime_served():
    assert {row["runtime"] for row in ROWS} == {"eager", "onnxruntime", "openvino"}
