"""Measurements behind the handler's choices, written to docs/handler.md.

``python -m zooserve.handler.bench`` times (1) decoding each test photograph with torchvision.io and with
PIL, and (2) the bare model's throughput at several batch sizes (decode and preprocessing included,
channels_last, float32, the same threads as a serving worker), for the reference networks.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from pathlib import Path

import torch

from zooserve.handler.decode import _decode_pil, _decode_torchvision, read_header
from zooserve.handler.preprocess import Preprocessor
from zooserve.zoo import create_model, model_info

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "tests" / "data"
OUTPUT = ROOT / "docs" / "handler.md"


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return 1e3 * statistics.median(samples)


def decode_rows(repeats: int) -> list[str]:
    rows = []
    for path in sorted(PHOTOS.glob("*")):
        if path.suffix not in (".jpg", ".png", ".webp"):
            continue
        data = path.read_bytes()
        header = read_header(data)
        tv_ms = _timed(lambda: _decode_torchvision(data), repeats)
        pil_ms = _timed(lambda: _decode_pil(data), repeats)
        rows.append(f"| {path.name} | {header.format} {header.mode} {header.width}x{header.height} | "
                    f"{tv_ms:.2f} | {pil_ms:.2f} | {'torchvision' if tv_ms < pil_ms else 'PIL'} |")
    return rows


def throughput(name: str, batch_size: int, seconds: float, threads: int = 0, start=None) -> float:
    """Images per second, decode + preprocess + forward, in a tight loop (``threads``: torch threads, 0: as
    set; ``start``: a barrier passed once warm, so that parallel processes time the same interval)."""
    if threads:
        torch.set_num_threads(threads)
    info = model_info(name)
    model = create_model(name).to(memory_format=torch.channels_last)
    preprocessor = Preprocessor(info.preprocess)
    data = (PHOTOS / "chelsea.jpg").read_bytes()

    def step() -> None:
        images = [preprocessor.resize_and_crop(_decode_torchvision(data)) for _ in range(batch_size)]
        batch = preprocessor.normalize(torch.stack(images), torch.float32).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            model(batch)

    step()
    if start is not None:
        start.wait()
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        done += batch_size
    return done / (time.perf_counter() - started)


def threads_per_process(processes: int) -> int:
    """The cores shared evenly between ``processes`` (at least one thread each)."""
    return max(1, (os.cpu_count() or 1) // processes)


def _throughput_in_child(args: tuple, start, results) -> None:
    results.put(throughput(*args, start=start))


def parallel_throughput(name: str, batch_size: int, seconds: float, processes: int) -> float:
    """Images per second of ``processes`` single-model processes side by side, the cores shared evenly
    between them (as TorchServe runs several workers of one model)."""
    if processes == 1:
        return throughput(name, batch_size, seconds, threads=os.cpu_count() or 1)
    threads = threads_per_process(processes)
    # spawn: a forked child would inherit this process's torch thread pool
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(processes), context.Queue()
    children = [context.Process(target=_throughput_in_child, args=((name, batch_size, seconds, threads), start, results))
                for _ in range(processes)]
    for child in children:
        child.start()
    rates = [results.get(timeout=1800) for _ in children]
    for child in children:
        child.join()
    return sum(rates)


def best_throughput(name: str, seconds: float, layouts: tuple[int, ...] = (1, 2),
                    batches: tuple[int, ...] = (1, 2, 4, 8)) -> tuple[float, dict]:
    """The fastest (images/s) over worker layouts (processes x threads = cores) and batch sizes; batch sizes
    are stepped up until a step gains less than 5%, so slow networks are not run at batch 8 for nothing."""
    best, best_config = 0.0, {}
    for processes in layouts:
        if processes > (os.cpu_count() or 1):
            continue
        previous = 0.0
        for batch in batches:
            rate = parallel_throughput(name, batch, seconds, processes)
            if rate > best:
                best, best_config = rate, {"processes": processes, "batch": batch,
                                           "threads": threads_per_process(processes)}
            if rate < 1.05 * previous:
                break
            previous = max(previous, rate)
    return best, best_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zooserve.handler.bench")
    parser.add_argument("--models", default="resnet18,resnet50,mobilenet_v2")
    parser.add_argument("--batches", default="1,2,4,8")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    lines = [
        "# Handler measurements", "",
        "Generated by `python -m zooserve.handler.bench` on this machine "
        f"({os.cpu_count()} cores, CPU, torch {torch.__version__}).", "",
        "## Decoding: torchvision.io vs PIL (median ms over "
        f"{args.repeats} runs, RGB uint8 tensor out)", "",
        "| photograph | format | torchvision.io | PIL | faster |", "| --- | --- | --- | --- | --- |",
        *decode_rows(args.repeats), "",
        "## Bare model throughput by batch size and worker layout", "",
        "Images/s, decode + preprocess + forward, channels_last, float32. Layout: processes x torch threads,",
        "the cores shared evenly, as TorchServe runs workers x threads (processes timed over the same interval).", "",
    ]
    batches = [int(b) for b in args.batches.split(",")]
    layouts = sorted({1, os.cpu_count() or 1})
    lines += ["| model | layout | " + " | ".join(f"batch {b}" for b in batches) + " |",
              "| --- | --- |" + " --- |" * len(batches)]
    for name in args.models.split(","):
        for processes in layouts:
            rates = [parallel_throughput(name, b, args.seconds, processes) for b in batches]
            layout = f"{processes} x {threads_per_process(processes)}"
            lines.append(f"| {name} | {layout} | " + " | ".join(f"{r:.1f}" for r in rates) + " |")
    OUTPUT.write_text("\n".join(lines) + "\n")
    print(OUTPUT.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
