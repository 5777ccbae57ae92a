"""The benchmark in miniature (two small models, a few seconds each), so `make bench` cannot rot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from loadtests.bench import main as bench
from loadtests.report import pareto_front

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_short_bench_writes_a_complete_summary(tmp_path):
    assert bench(["--models", "resnet18,squeezenet1_0", "--duration", "3", "--concurrency", "2",
                  "--limit-seconds", "1", "--overhead-requests", "12", "--results", str(tmp_path), "--no-docs"]) == 0
    [run] = list(tmp_path.iterdir())
    summary = json.loads((run / "summary.json").read_text())
    rows = {row["name"]: row for row in summary["models"]}
    assert set(rows) == {"resnet18", "squeezenet1_0"}
    for row in rows.values():
        for key in ("rps", "p50_ms", "p95_ms", "p99_ms", "failures", "limit_rps", "ratio_to_limit", "direct_rps",
                    "seed_top1"):
            assert key in row, key
        assert row["rps"] > 0 and row["failures"] == 0 and row["limit_rps"] > 0
        assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert rows["resnet18"]["stock_rps"] > 0 and "ratio_to_stock" in rows["resnet18"]
    assert rows["resnet18"]["stock_default_workers"] >= 1
    assert "stock_rps" not in rows["squeezenet1_0"], "stock TorchServe only for the reference networks"
    # straight at our TorchServe too, for the reference networks only
    assert rows["resnet18"]["direct_rps"] > 0 and rows["squeezenet1_0"]["direct_rps"] is None
    assert any(path.name.endswith("_stats.csv") for path in run.iterdir()), "locust CSVs are kept"
    assert rows["resnet18"]["v2_rps"] > 0 and rows["resnet18"]["grpc_rps"] > 0
    # the fine gateway overhead: a tiny network and the reference one, every path answered
    overhead = {entry["model"]: entry for entry in summary["overhead"]}
    assert set(overhead) == {"resnet8_digits", "resnet18"}
    for entry in overhead.values():
        assert len(entry["latency"]) == 6 and all(p["requests"] == 12 for p in entry["latency"].values())
        assert all(0 < p["p50_ms"] <= p["p99_ms"] for p in entry["latency"].values())
        for added in entry["added"].values():
            low, high = added["p50_ci95_ms"]
            assert low <= high
    assert rows["resnet18"]["gateway_overhead_p50_ms"] == overhead["resnet18"]["added"]["gateway REST"]["p50_ms"]


def test_pareto_front():
    points = [("fast", 100.0, 70.0), ("accurate", 5.0, 83.0), ("dominated", 4.0, 71.0), ("mid", 50.0, 76.0)]
    assert pareto_front(points) == {"fast", "accurate", "mid"}


def test_report_rewrites_a_kept_run_to_its_own_page(tmp_path):
    """``python -m loadtests.report RUN --output``: a row per network, the charts it links beside it."""
    from loadtests.report import main as report

    runs = sorted(p.parent for p in (ROOT / "loadtests" / "results").glob("2*/summary.json"))
    assert runs, "a kept bench run"
    run = tmp_path / runs[-1].name
    shutil.copytree(runs[-1], run)
    page = tmp_path / "docs" / "reference.md"
    page.parent.mkdir()
    assert report([str(run), "--output", str(page)]) == 0
    text = page.read_text()
    for row in json.loads((run / "summary.json").read_text())["models"]:
        assert f"| `{row['name']}` |" in text
    for link in ("img/reference-throughput.png", "img/reference-accuracy_vs_throughput.png"):
        assert link in text and (page.parent / link).is_file()
