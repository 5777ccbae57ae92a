"""``make demo-ab``: an A/B experiment between two really trained zoo models, with feedback and a report.

1. trains resnet20_digits and resnet8_digits on half of scikit-learn's handwritten digits (zooserve/demo/digits.py;
   the weights are cached in logs/demo-ab/weights, so only the first run trains),
2. packs them as archives carrying those weights (and their digit labels) into logs/demo-ab/model_store,
3. starts TorchServe and the gateway with the experiment of deploy/experiments.yaml (the one the
   deployments run), recording to a fresh SQLite file,
4. sends every held-out digit through POST /predict/<experiment> (one X-User-ID per digit, so the sticky
   assignment splits them about 50/50), then POST /feedback with its true label,
5. prints the report: per variant requests, errors, latency and accuracy with its 95% Wilson interval, the
   difference against the control with its sequential figures (95% confidence sequence, always-valid
   p-value) and its fixed-horizon ones, and the verdict, which uses the sequential ones; the HTML page (with
   the estimate and its confidence sequence over time) is written to logs/demo-ab/report.html.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

import httpx

from zooserve.demo.digits import DigitImage, digit_images, trained_weights
from zooserve.gateway.experiments import page
from zooserve.gateway.experiments.config import load
from zooserve.gateway.server import GatewayServer
from zooserve.gateway.settings import ROOT, BackendSettings, Settings
from zooserve.snapshot import FILE_NAME
from zooserve.store.build import ArchiveOptions, build_archive
from zooserve.store.catalog import write_catalog
from zooserve.torchserve import TorchServe, TorchServePorts
from zooserve.zoo import list_models

DEMO_DIR = ROOT / "logs" / "demo-ab"
EXPERIMENTS_FILE = ROOT / "deploy" / "experiments.yaml"
EXPERIMENT = "digits_resnet20_vs_resnet8"
# chosen so the two really differ: the 20-layer net trained to convergence, the 8-layer one stopped early
EPOCHS = {"resnet20_digits": 15, "resnet8_digits": 6}
CONCURRENCY = 4

log = logging.getLogger("demo-ab")


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def build_store(models: dict[str, int], directory: Path) -> Path:
    """Trains (or reuses) each model's weights and packs them into an archive of the demo's store, with the
    catalog snapshot the gateway reads."""
    store = directory / "model_store"
    for name, epochs in models.items():
        started = time.perf_counter()
        weights = trained_weights(name, epochs, directory / "weights")
        build_archive(name, store, ArchiveOptions(weights={name: weights}))
        print(f"  {name}: {epochs} epochs, weights {_shown(weights)} ({time.perf_counter() - started:.0f} s)",
              flush=True)
    write_catalog(store)
    return store


async def run_experiment(url: str, experiment: str, key_header: str, digits: list[DigitImage]) -> dict:
    """Every digit through the experiment, then its true label as feedback; returns the report."""
    limit = asyncio.Semaphore(CONCURRENCY)
    failures = 0

    async def one(client: httpx.AsyncClient, i: int, digit: DigitImage) -> None:
        nonlocal failures
        async with limit:
            answer = await client.post(f"/predict/{experiment}", content=digit.png,
                                       headers={"Content-Type": "image/png", key_header: f"user-{i:04d}"})
            if answer.status_code != 200:
                failures += 1
                return
            feedback = await client.post("/feedback", json={"request_id": answer.json()["request_id"],
                                                            "label": digit.label})
            feedback.raise_for_status()

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await asyncio.gather(*(one(client, i, d) for i, d in enumerate(digits)))
        if failures:
            print(f"  {failures} requests failed (recorded as errors)", flush=True)
        report = await client.get(f"/experiments/{experiment}/report")
        report.raise_for_status()
        return report.json()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def format_report(report: dict) -> str:
    lines = [f"experiment {report['experiment']} (control: {report['control']})", ""]
    lines.append(f"{'variant':<10} {'model':<16} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7} "
                 f"{'p99 ms':>7}  accuracy (95% Wilson CI)")
    for v in report["variants"]:
        ci = v["accuracy_ci"]
        accuracy = f"{_pct(v['accuracy'])} ({_pct(ci[0])} to {_pct(ci[1])}), {v['correct']}/{v['labelled']}" \
            if ci else "-"
        latency = v["latency_ms"]
        lines.append(f"{v['variant']:<10} {v['model']:<16} {v['requests']:>8} {v['errors']:>6} "
                     f"{latency['p50'] or 0:>7.1f} {latency['p95'] or 0:>7.1f} {latency['p99'] or 0:>7.1f}  {accuracy}")
    for c in report["comparisons"]:
        accuracy, latency, running = c["accuracy"], c["latency_ms"], c["sequential"]
        lines += [
            "",
            f"{c['variant']} against {c['against']}:",
            f"  accuracy difference {accuracy['difference']:+.1%}",
            f"    sequential: 95% confidence sequence {running['accuracy']['low']:+.1%} to "
            f"{running['accuracy']['high']:+.1%}, always-valid p = {running['accuracy']['p_value']:.3g}",
            f"    fixed-horizon: 95% CI {accuracy['low']:+.1%} to {accuracy['high']:+.1%}, two-sided p = "
            f"{accuracy['p_value']:.3g} (valid read once, at a size fixed in advance)",
            f"  error rate difference {c['error_rate']['difference']:+.1%} (always-valid p = "
            f"{running['error_rate']['p_value']:.3g})",
            f"  median latency difference {latency['difference']:+.1f} ms (p = {latency['p_value']:.3g})",
            f"  verdict (sequential): {c['verdict']}",
        ]
    return "\n".join(lines)


async def serve_and_run(settings: Settings, experiment: str, key_header: str, digits: list[DigitImage]) -> dict:
    server = GatewayServer(settings)
    await server.start()
    try:
        return await run_experiment(f"http://127.0.0.1:{server.rest_port}", experiment, key_header, digits)
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zooserve.demo.ab", description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=DEMO_DIR, help="weights, archives, TorchServe, records")
    parser.add_argument("--limit", type=int, default=None, help="send only this many test digits")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()

    experiment = load(EXPERIMENTS_FILE, list_models()).by_name()[EXPERIMENT]
    models = {v.model: EPOCHS[v.model] for v in experiment.variants}
    print(f"1. training (cached) and packing {', '.join(models)}", flush=True)
    store = build_store(models, args.dir)

    _, test = digit_images()
    digits = test[:args.limit] if args.limit else test
    ports = TorchServePorts.free()
    records = args.dir / "records.sqlite3"
    for path in (records, records.with_name(records.name + "-wal"), records.with_name(records.name + "-shm")):
        path.unlink(missing_ok=True)  # this run's requests only
    torchserve = TorchServe(args.dir / "torchserve", store, ports)
    settings = Settings(
        host="127.0.0.1", rest_port=0, grpc_port=0, experiments_file=EXPERIMENTS_FILE, records_path=records,
        catalog_path=store / FILE_NAME,
        record_bucket_s=1,  # the run lasts seconds: the report's charts over time get a look per second
        backends={"local": BackendSettings(inference_url=torchserve.inference_url,
                                           management_url=torchserve.management_url,
                                           grpc_address=f"127.0.0.1:{ports.grpc_inference}",
                                           key_dir=torchserve.workdir)},
    )
    print(f"2. starting TorchServe (logs in {_shown(torchserve.workdir)}) and the gateway", flush=True)
    with torchserve:
        print(f"3. {len(digits)} held-out digits through POST /predict/{EXPERIMENT} "
              f"({experiment.assignment.key} per digit), then POST /feedback with the true label", flush=True)
        report = asyncio.run(serve_and_run(settings, EXPERIMENT, experiment.assignment.key, digits))
    html = args.dir / "report.html"
    html.write_text(page.render(report), encoding="utf-8")
    print(f"\n{format_report(report)}\n\nHTML report: {_shown(html)}; records: "
          f"{_shown(records)}; {time.perf_counter() - started:.0f} s in all", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
