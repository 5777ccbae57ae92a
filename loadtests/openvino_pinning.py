"""Why OpenVINO workers do not pin their threads (zooserve/handler/runtimes/openvino.py): one
single-threaded OpenVINO process per core, as TorchServe's workers run, timed side by side with OpenVINO's
default pinning and without it, in interleaved rounds.

    python -m loadtests.openvino_pinning [--model resnet18] [--rounds 3] [--seconds 8]

Pinned, every process puts its inference thread on the same first core, so the processes share it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import openvino as ov
import torch

from zooserve.handler.runtimes.openvino import OpenVino
from zooserve.machine import describe_machine
from zooserve.zoo import create_model

BATCH = 4  # the serving batch size (zooserve/store/build.py)
IMAGE = (3, 224, 224)  # the export fixes the image size, the batch stays dynamic


def images_per_second(directory: str, pinned: bool, seconds: float) -> float:
    """One worker's throughput: the IR in ``directory`` compiled single-threaded, pinned or not."""
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY",
              "ENABLE_CPU_PINNING": pinned}
    model = ov.Core().read_model(Path(directory) / "model.xml")
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()
    batch = np.random.default_rng(0).standard_normal((BATCH, *IMAGE), dtype=np.float32)
    for _ in range(3):  # warm
        request.infer([batch])
    started, images = time.monotonic(), 0
    while time.monotonic() - started < seconds:
        request.infer([batch])
        images += BATCH
    return images / (time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as directory:
        OpenVino.export(create_model(args.model).eval(), torch.randn(BATCH, *IMAGE), Path(directory))
        figures: dict[bool, list[float]] = {True: [], False: []}
        with ProcessPoolExecutor(workers) as pool:
            for _ in range(args.rounds):
                for pinned in (True, False):  # interleaved
                    figures[pinned] += pool.map(images_per_second, [directory] * workers, [pinned] * workers,
                                                [args.seconds] * workers)
    machine = describe_machine()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores; {args.model}, {workers} processes x 1 thread, "
          f"batch {BATCH}, {args.rounds} rounds of {args.seconds:g} s")
    for pinned, values in figures.items():
        print(f"{'pinned' if pinned else 'not pinned'}: img/s per process median {statistics.median(values):.1f} "
              f"(range {min(values):.1f}-{max(values):.1f} over {len(values)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
