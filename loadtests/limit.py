"""The honest limit of ``make bench``: the best this machine does with a model at the same numerics.

Every runtime that agrees with eager PyTorch (exported and checked as an archive build does it,
zooserve/store/select.py), every batch size of ``BATCHES`` (all of them: no early stop) and both layouts
of the cores: one process with all of them, or one single-threaded process per core timed over the
same interval (as TorchServe runs its workers). A configuration's throughput is images per second
through decode (torchvision.io), resize, crop, normalize and the runtime, in a tight loop with no
server. Every configuration is measured ``rounds`` times, interleaved: each round runs every
configuration once, in an order shuffled every round, so a drift of the machine's speed falls on all
alike. Each layout's processes are started once and hold every runtime loaded, so that a round switches
configurations without reloading (or recompiling) anything.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from zooserve.handler.decode import decode
from zooserve.handler.preprocess import Preprocessor
from zooserve.handler.runtimes import RUNTIME_NAMES, ModelSource, RuntimeOptions, load_runtime
from zooserve.store.select import Candidate, check_inputs, interleaved, reasons_left_out, try_candidates
from zooserve.zoo import create_model, model_info

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "data" / "chelsea.jpg"
BATCHES = (1, 2, 4, 8, 16)
START_TIMEOUT_S = 1800  # loading every runtime of the largest networks, compiling included


def agreeing_runtimes(name: str, workdir: Path, runtimes: tuple[str, ...]) -> tuple[dict[str, Path], dict[str, str]]:
    """Each runtime exported into its own folder of ``workdir`` and checked against eager, as the
    selection does: the folders of those that agree, and why each other one is left out."""
    inputs, photos = check_inputs(name)
    wanted = [Candidate(r) for r in RUNTIME_NAMES if r in {"eager", *runtimes}]
    build = lambda: create_model(name)  # noqa: E731
    records, loaded = try_candidates(wanted, build, workdir, inputs, photos,
                                     RuntimeOptions(threads=torch.get_num_threads()), batch_size=4)
    return {key: workdir / key for key in loaded}, reasons_left_out(records, loaded)


def _serve_configurations(name: str, folders: dict[str, Path], threads: int, commands, results, start) -> None:
    """A layout's process: every runtime loaded once, then (runtime, batch, seconds) commands timed."""
    torch.set_num_threads(threads)
    build = lambda: create_model(name)  # noqa: E731
    runtimes = {r: load_runtime(r, ModelSource(folder, build), RuntimeOptions(threads=threads))
                for r, folder in folders.items()}
    preprocessor = Preprocessor(model_info(name).preprocess)
    data = PHOTO.read_bytes()
    results.put("ready")
    while (command := commands.get()) is not None:
        runtime, batch, seconds = command

        def step() -> None:
            images = [preprocessor.resize_and_crop(decode(data)) for _ in range(batch)]
            runtimes[runtime](preprocessor.normalize(torch.stack(images), torch.float32))

        step()  # warm: this batch size's first run
        start.wait()
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            step()
            done += batch
        results.put(done / (time.perf_counter() - started))


class Layout:
    """``processes`` processes of ``cores // processes`` threads each, every runtime loaded in each."""

    def __init__(self, name: str, folders: dict[str, Path], processes: int, cores: int):
        self.processes, self.threads = processes, max(1, cores // processes)
        context = multiprocessing.get_context("spawn")  # a forked child would share this process's thread pool
        self.start, self.results = context.Barrier(processes), context.Queue()
        self.commands = [context.Queue() for _ in range(processes)]
        self.children = [context.Process(target=_serve_configurations, daemon=True,
                                         args=(name, folders, self.threads, queue, self.results, self.start))
                         for queue in self.commands]
        for child in self.children:
            child.start()
        for _ in self.children:
            assert self.results.get(timeout=START_TIMEOUT_S) == "ready"

    def rate(self, runtime: str, batch: int, seconds: float) -> float:
        """Images per second of all the processes together, each running ``batch`` at a time."""
        for queue in self.commands:
            queue.put((runtime, batch, seconds))
        return sum(self.results.get(timeout=START_TIMEOUT_S) for _ in self.children)

    def close(self) -> None:
        for queue in self.commands:
            queue.put(None)
        for child in self.children:
            child.join(60)


def spread(samples: list[float]) -> dict[str, float]:
    """The median of a configuration's samples, and their range relative to it."""
    median = statistics.median(samples)
    return {"median": round(median, 2), "min": round(min(samples), 2), "max": round(max(samples), 2),
            "spread_pct": round(100 * (max(samples) - min(samples)) / median, 1) if median else None}


def limit(name: str, seconds: float, rounds: int = 3, batches: tuple[int, ...] = BATCHES,
          runtimes: tuple[str, ...] = RUNTIME_NAMES, seed: int = 0) -> dict:
    """Every configuration's samples, median and spread, the best configuration (by median) and the
    runtimes left out with why."""
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix=f"zoo-limit-{name}-") as tmp:
        folders, left_out = agreeing_runtimes(name, Path(tmp), runtimes)
        layouts = {processes: Layout(name, folders, processes, cores) for processes in sorted({1, cores})}
        try:
            calls = {(runtime, processes, batch): (lambda r=runtime, p=processes, b=batch: layouts[p].rate(r, b, seconds))
                     for runtime in folders for processes in layouts for batch in batches}
            samples = interleaved(calls, rounds, random.Random(seed))
        finally:
            for layout in layouts.values():
                layout.close()
    configurations = [{"runtime": runtime, "processes": processes, "threads": layouts[processes].threads,
                       "batch": batch, "img_s": [round(s, 2) for s in values]} | spread(values)
                      for (runtime, processes, batch), values in samples.items()]
    best = max(configurations, key=lambda c: c["median"])
    return {"best": best, "configurations": configurations, "left_out": left_out, "rounds": rounds,
            "seconds": seconds}
