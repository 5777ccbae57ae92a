"""The soak in miniature (20 s instead of `make soak`'s 600), so it cannot rot: the whole stack under a mix of
REST, gRPC, v2 and bad requests, with no unexpected answer and no resource growing past a generous bound."""

from __future__ import annotations

import csv
import json

import pytest

from loadtests.soak import main as soak

pytestmark = pytest.mark.e2e


def test_short_soak_has_no_unexpected_failure_and_bounded_drift(reliability_store, tmp_path):
    assert soak(["--duration", "20", "--users", "6", "--interval", "1", "--warmup", "5",
                 "--store", str(reliability_store), "--results", str(tmp_path), "--no-docs"]) == 0
    [run] = list(tmp_path.iterdir())
    summary = json.loads((run / "summary.json").read_text())
    print(f"\nshort soak: {json.dumps({k: summary[k] for k in ('requests', 'rps', 'latency_ms', 'processes')})}")
    assert summary["unexpected_failures"] == 0, summary["failures_by_kind"]
    kinds = summary["by_kind"]
    for name in ("/predict/resnet18", "Predict/resnet18", "/v2/models/resnet18/infer"):
        assert kinds[name]["requests"] > 10, name  # every protocol under load
    assert sum(k["requests"] for name, k in kinds.items() if name.startswith("bad ")) > 5
    assert not [code for code in summary["gateway_statuses"] if code.startswith("5")]  # no server error at all
    roles = {p["role"] for p in summary["processes"]}
    assert roles == {"gateway", "frontend", "worker"}
    for process in summary["processes"]:
        assert process["samples"] >= 10
        assert process["fd_drift"] <= 16, process  # no descriptor leaks (sockets, files)
    gateway = next(p for p in summary["processes"] if p["role"] == "gateway")
    assert gateway["rss_drift_mib"] < 64, gateway
    with (run / "samples.csv").open() as handle:
        assert {row["role"] for row in csv.DictReader(handle)} == roles
