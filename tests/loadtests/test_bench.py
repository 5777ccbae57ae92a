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
    """resnet18 beside its peers (two interleaved rounds at one step of users), resnet8_digits alone; the
    limit over two runtimes and two batch sizes (all four and 1-16 by default), both layouts."""
    assert bench(["--models", "resnet18,resnet8_digits", "--duration", "4", "--concurrency", "2", "--steps", "2",
                  "--rounds", "2", "--limit-seconds", "0.3", "--limit-rounds", "2", "--limit-batches", "1,2",
                  "--limit-runtimes", "eager,onnxruntime", "--overhead-requests", "12",
                  "--results", str(tmp_path), "--no-docs"]) == 0
    [run] = list(tmp_path.iterdir())
    summary = json.loads((run / "summary.json").read_text())
    rows = {row["name"]: row for row in summary["models"]}
    assert set(rows) == {"resnet18", "resnet8_digits"}
    for row in rows.values():
        for key in ("rps", "p50_ms", "p95_ms", "p99_ms", "failures", "limit_rps", "ratio_to_limit", "direct_rps",
                    "seed_top1", "runtime", "limit_runtime"):
            assert key in row, key
        assert row["rps"] > 0 and row["failures"] == 0 and row["limit_rps"] > 0
        assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    # the limit: every configuration kept, measured in every round, the best one by median
    limits = summary["details"]["limits"]
    for name, found in limits.items():
        configurations = found["configurations"]
        assert {(c["runtime"], c["processes"], c["batch"]) for c in configurations} == {
            (r, p, b) for r in ("eager", "onnxruntime") for p in (1, 2) for b in (1, 2)}, name
        assert all(len(c["img_s"]) == 2 and c["min"] <= c["median"] <= c["max"] for c in configurations)
        assert found["best"]["median"] == max(c["median"] for c in configurations) == rows[name]["limit_rps"]
    # the peers, for the reference network only, each through the same rounds and steps, ratios with intervals
    peers = summary["details"]["ours"]["resnet18"]["peers"]
    assert set(peers["systems"]) == {"ours", "ours_form", "stock_default", "stock_best_1w", "stock_best_2w", "litserve"}
    for system in peers["systems"].values():
        assert set(system["steps"]) == {"2"} and len(system["best"]["rps"]) == 2 and system["best"]["failures"] == 0
    for peer in ("stock_default", "stock_best_1w", "stock_best_2w", "litserve"):
        ratio = peers["ratios"][peer]
        assert ratio["ratio"] > 0 and ratio["ci95"][0] <= ratio["ratio"] <= ratio["ci95"][1]
    assert rows["resnet18"]["stock_rps"] > 0 and rows["resnet18"]["litserve_rps"] > 0
    assert "vs_litserve" not in rows["resnet8_digits"], "peers for the reference networks only"
    # straight at our TorchServe too, for the reference networks only
    assert rows["resnet18"]["direct_rps"] > 0 and rows["resnet8_digits"]["direct_rps"] is None
    assert any(path.name.endswith("_stats.csv") for path in run.iterdir()), "locust CSVs are kept"
    assert rows["resnet18"]["v2_rps"] > 0 and rows["resnet18"]["grpc_rps"] > 0
    # where the CPU went, ours through the gateway and TorchServe alone
    cpu = rows["resnet18"]["cpu_ms_per_answer"]
    assert set(cpu) == {"rest", "direct"} and rows["resnet18"]["rps_alone"] > 0
    assert cpu["rest"]["torchserve workers"] > 0 and cpu["rest"]["gateway"] > cpu["direct"]["gateway"]
    # the limit's best configuration timed again after our runs (the machine's speed drifts)
    again = summary["details"]["ours"]["resnet18"]["limit_again"]
    assert len(again["img_s"]) == 2 and again["sweep_median"] == rows["resnet18"]["limit_rps"]
    assert rows["resnet18"]["limit_again_rps"] == again["median"] > 0 and "limit_again_rps" not in rows["resnet8_digits"]
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
    # the page renders from it: the peers' table and the limit's configurations
    from loadtests.report import write_docs

    page = tmp_path / "docs" / "bench.md"
    page.parent.mkdir()
    write_docs(summary, run, page)
    text = page.read_text()
    assert "## Peers" in text and "LitServe 0.2.19" in text and "## The limit's configurations" in text
    assert "## Where the CPU goes" in text and "## Targets" in text and "| `resnet18` | of limit >= 0.85 |" in text


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
