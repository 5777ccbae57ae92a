"""Which transport should the gateway use to reach TorchServe: pooled keep-alive HTTP or gRPC?

Runs the gateway's own inference clients (zooserve/gateway/backend/: ``HttpInference`` and ``GrpcInference``)
against a real TorchServe, in alternating rounds so that both see the same machine load, and prints
throughput and latency per transport and concurrency. The model defaults to resnet8_digits (about 2 ms
a forward pass), so that what differs is the transport and not the network. It runs on uvloop, as the
gateway does, and also gives the client's CPU per call (this process's CPU time, gRPC's threads included,
over the calls): on a 2-core machine every millisecond of it is taken from the model's workers.

    .venv/bin/python -m loadtests.backend_transport [--model resnet8_digits] [--requests 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from pathlib import Path

import uvloop

from zooserve.gateway.backend.backend import Inference
from zooserve.gateway.backend.calls import KeyRing
from zooserve.gateway.backend.grpc_inference import GrpcInference
from zooserve.gateway.backend.http_inference import HttpInference
from zooserve.gateway.backend.management import Management
from zooserve.gateway.experiments.stats import percentile
from zooserve.gateway.settings import BackendSettings
from zooserve.store.build import ArchiveOptions, build_archive
from zooserve.torchserve import TorchServe, TorchServePorts

ROOT = Path(__file__).resolve().parents[1]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def burst(backend: Inference, model: str, image: bytes, requests: int, concurrency: int):
    """``requests`` predictions from ``concurrency`` clients; (requests per second, latencies in s, CPU
    seconds per call)."""
    latencies: list[float] = []

    async def client(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            await backend.predict(model, None, image, None, timeout=60)
            latencies.append(time.perf_counter() - started)

    started, cpu = time.perf_counter(), _cpu_seconds()
    await asyncio.gather(*(client(requests // concurrency) for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - started), latencies, (_cpu_seconds() - cpu) / len(latencies)


async def compare(torchserve: TorchServe, args: argparse.Namespace) -> None:
    settings = BackendSettings(inference_url=torchserve.inference_url, management_url=torchserve.management_url,
                               grpc_address=f"127.0.0.1:{torchserve.ports.grpc_inference}", key_dir=torchserve.workdir)
    keys = KeyRing(settings.key_dir)
    backends: dict[str, Inference] = {"http": HttpInference("bench", settings, keys),
                                      "grpc": GrpcInference("bench", settings, keys)}
    management = Management("bench", settings, keys)
    await management.register(args.model, 600)
    management.close()
    for name in args.images:
        image = (ROOT / "tests" / "data" / name).read_bytes()
        for concurrency in args.concurrency:
            results: dict[str, list] = {p: [] for p in backends}
            for backend in backends.values():  # warm-up: connections, channel, worker caches
                await burst(backend, args.model, image, 20, concurrency)
            for _ in range(args.rounds):
                for protocol, backend in backends.items():
                    results[protocol].append(await burst(backend, args.model, image, args.requests, concurrency))
            for protocol, rounds in results.items():
                throughput = statistics.median(r[0] for r in rounds)
                latencies = [x for r in rounds for x in r[1]]
                p50, p99 = (percentile(latencies, q) * 1000 for q in (50, 99))
                cpu_ms = statistics.median(r[2] for r in rounds) * 1000
                print(f"| {args.model} | {name} ({len(image) // 1024} KiB) | {concurrency} | {protocol} | "
                      f"{throughput:.1f} | {p50:.1f} | {p99:.1f} | {cpu_ms:.2f} |", flush=True)
    for backend in backends.values():
        await backend.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet8_digits")
    parser.add_argument("--images", nargs="+", default=["chelsea.jpg", "astronaut.png"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--requests", type=int, default=200, help="per round, transport and concurrency")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        store = Path(tmp) / "store"
        build_archive(args.model, store, ArchiveOptions())
        with TorchServe(Path(tmp) / "torchserve", store, TorchServePorts.free()) as torchserve:
            print("| model | image | clients | transport | requests/s (median of rounds) | p50 ms | p99 ms "
                  "| client CPU ms per call |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- |")
            uvloop.run(compare(torchserve, args))


if __name__ == "__main__":
    main()
