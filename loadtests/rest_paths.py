"""Which REST path should a prediction take through the gateway? Each option measured alone, in place.

Two choices, crossed: the prediction route matched ahead of FastAPI (``RestApp``'s ``predict_ahead``, by
FastAPI's own route definitions) or FastAPI alone; uvicorn's httptools protocol with the one-write transport
(``rest/protocol.py``: a response's head and body in one syscall) or uvicorn's own, which writes them apart.
The four combinations, and the gateway as it runs without its access lines (``logs.py``: what writing one
JSON line per request costs), run as five gateway processes in front of one real TorchServe, and one
sequential client sends each round one request to every gateway and one straight to TorchServe, in a
shuffled order (as ``loadtests/overhead.py`` does: every path sees the same machine at the same moments). Per path: p50
and p99, and the p50 added to TorchServe's with its 95% bootstrap interval. Per option alone: what it
saves at p50, the path without it minus the path with it and nothing else changed, paired by round, with
its 95% bootstrap interval (the route ahead with either transport, the one-write transport with either
route, the access lines on the path as it runs).

    .venv/bin/python -m loadtests.rest_paths [--rounds 400] [--runs 2] [--model resnet8_digits]

Writes loadtests/results/rest-paths-<time>/results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from zooserve.gateway.experiments.stats import percentile
from zooserve.store.build import ArchiveOptions, build_archive
from zooserve.store.catalog import write_catalog
from zooserve.torchserve import TorchServe, TorchServePorts, free_port

from .overhead import added_p50_interval

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "tests" / "data" / "chelsea.jpg"
# name -> (prediction route ahead of FastAPI, one-write transport, access lines); the first is the gateway as
# it runs
OPTIONS = {"ahead, one write": (True, True, True), "ahead, uvicorn's writes": (True, False, True),
           "FastAPI alone, one write": (False, True, True), "FastAPI alone, uvicorn's writes": (False, False, True),
           "ahead, one write, no access lines": (True, True, False)}
DIRECT = "TorchServe REST"
# option, and where -> (the path without it, the path with it)
EFFECTS = {
    "route ahead of FastAPI, with the one-write transport": ("FastAPI alone, one write", "ahead, one write"),
    "route ahead of FastAPI, with uvicorn's writes": ("FastAPI alone, uvicorn's writes", "ahead, uvicorn's writes"),
    "one-write transport, route ahead": ("ahead, uvicorn's writes", "ahead, one write"),
    "one-write transport, FastAPI alone": ("FastAPI alone, uvicorn's writes", "FastAPI alone, one write"),
    "access lines (a cost: negative)": ("ahead, one write, no access lines", "ahead, one write"),
}


def serve(ahead: bool, one_write: bool, access_lines: bool) -> None:
    """One gateway (REST only) with the chosen path, configured by ZOO_* as any gateway is."""
    import logging

    import uvicorn
    import uvloop
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from zooserve.gateway import logs
    from zooserve.gateway.core import Gateway
    from zooserve.gateway.experiments.layer import Experiments
    from zooserve.gateway.experiments.metrics import ExperimentMetrics
    from zooserve.gateway.rest.app import create_app
    from zooserve.gateway.rest.protocol import OneWriteHttpToolsProtocol
    from zooserve.gateway.server import rest_config
    from zooserve.gateway.settings import Settings

    async def run() -> None:
        settings = Settings()
        logs.configure(settings.log_format)
        if not access_lines:
            logs.ACCESS.setLevel(logging.WARNING)
        gateway = Gateway(settings)
        experiments = Experiments(gateway, settings, ExperimentMetrics(gateway.metrics.registry))
        app = create_app(gateway, experiments, predict_ahead=ahead)
        await gateway.start()
        protocol = OneWriteHttpToolsProtocol if one_write else HttpToolsProtocol
        await uvicorn.Server(rest_config(app, settings, protocol)).serve()

    uvloop.run(run())


def start_gateways(torchserve: TorchServe, catalog: Path, logs_dir: Path) -> tuple[dict[str, str], list]:
    backends = json.dumps({"local": {"inference_url": torchserve.inference_url,
                                     "management_url": torchserve.management_url, "key_dir": str(torchserve.workdir)}})
    urls, processes = {}, []
    for name, flags in OPTIONS.items():
        port = free_port()
        env = os.environ | {"ZOO_REST_PORT": str(port), "ZOO_BACKENDS": backends, "ZOO_CATALOG_PATH": str(catalog),
                            "ZOO_LOG_FORMAT": "json", "ZOO_REQUEST_TIMEOUT_S": "600"}  # the first loads the model
        log = open(logs_dir / f"gateway-{port}.log", "wb")  # the access lines are written, as in production
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "loadtests.rest_paths", "serve", *(str(int(flag)) for flag in flags)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        urls[name] = f"http://127.0.0.1:{port}"
    for url in urls.values():
        wait_ready(url)
    return urls, processes


def wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} never became ready"
        time.sleep(0.2)


def measure(urls: dict[str, str], torchserve: TorchServe, model: str, rounds: int, seed: int) -> dict:
    image = IMAGE.read_bytes()
    calls = {name: (f"{url}/predict/{model}", {"Content-Type": "image/jpeg"}) for name, url in urls.items()}
    calls[DIRECT] = (f"{torchserve.inference_url}/predictions/{model}",
                     {"Authorization": f"Bearer {torchserve.keys().inference}",
                      "Content-Type": "application/octet-stream"})
    samples: dict[str, list[float]] = {name: [] for name in calls}
    with httpx.Client(timeout=120) as http:
        def send(name: str) -> float:
            url, headers = calls[name]
            started = time.perf_counter()
            answer = http.post(url, content=image, headers=headers)
            elapsed = 1e3 * (time.perf_counter() - started)
            assert answer.status_code == 200 and answer.json()["predictions"], answer.text[:200]
            return elapsed

        for name in calls:  # warm-up: the model loaded, connections open, caches filled
            for _ in range(20):
                send(name)
        order, shuffle = list(calls), random.Random(seed).shuffle
        for _ in range(rounds):
            shuffle(order)
            for name in order:
                samples[name].append(send(name))
    return samples


def summarize(samples: dict[str, list[float]], seed: int) -> dict:
    """Per path its p50, p99 and added p50; per option what it saves at p50; all in ms, intervals 95%."""
    def difference(slower: str, faster: str) -> dict:
        low, high = added_p50_interval(samples[slower], samples[faster], random.Random(seed))
        value = statistics.median(samples[slower]) - statistics.median(samples[faster])
        return {"p50_ms": round(value, 3), "ci95_ms": [round(low, 3), round(high, 3)]}

    paths = {name: {"p50_ms": round(statistics.median(values), 3), "p99_ms": round(percentile(values, 99), 3),
                    "requests": len(values)} | ({"added": difference(name, DIRECT)} if name != DIRECT else {})
             for name, values in samples.items()}
    return {"paths": paths, "saves": {option: difference(*pair) for option, pair in EFFECTS.items()}}


def table(runs: list[dict]) -> str:
    lines = ["| run | path | p50 ms | p99 ms | added to TorchServe's p50, ms (95% interval) |", "| --- " * 5 + "|"]
    for number, run in enumerate(runs, 1):
        lines += [f"| {number} | {name} | {e['p50_ms']:.3f} | {e['p99_ms']:.3f} | {_interval(e.get('added'))} |"
                  for name, e in run["paths"].items()]
    numbers = range(1, len(runs) + 1)
    lines += ["", "| option | " + " | ".join(f"run {n}: saves at p50, ms (95% interval)" for n in numbers) + " |",
              "| --- " * (len(runs) + 1) + "|"]
    lines += [f"| {option} | " + " | ".join(_interval(run["saves"][option]) for run in runs) + " |"
              for option in EFFECTS]
    return "\n".join(lines)


def _interval(difference: dict | None) -> str:
    if difference is None:
        return "-"
    low, high = difference["ci95_ms"]
    return f"{difference['p50_ms']:+.3f} ({low:+.3f} to {high:+.3f})"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"]:
        serve(*(flag == "1" for flag in args[1:4]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m loadtests.rest_paths", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet8_digits")
    parser.add_argument("--rounds", type=int, default=400, help="rounds per run: one request per path each")
    parser.add_argument("--runs", type=int, default=2)
    options = parser.parse_args(args)
    out = ROOT / "loadtests" / "results" / f"rest-paths-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="zoo-rest-paths-") as tmp:
        store = Path(tmp) / "store"
        build_archive(options.model, store, ArchiveOptions())
        catalog = write_catalog(store)
        with TorchServe(Path(tmp) / "torchserve", store, TorchServePorts.free()) as torchserve:
            urls, processes = start_gateways(torchserve, catalog, Path(tmp))
            try:
                samples = [measure(urls, torchserve, options.model, options.rounds, seed)
                           for seed in range(options.runs)]
            finally:
                for process in processes:
                    process.terminate()
                    process.wait(30)
    runs = [summarize(run, seed) for seed, run in enumerate(samples)]
    (out / "results.json").write_text(json.dumps({"model": options.model, "rounds": options.rounds, "runs": runs,
                                                  "cpus": os.cpu_count(), "load_average_after": os.getloadavg(),
                                                  "samples_ms": samples}))
    print(table(runs))
    print(f"\n{out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
