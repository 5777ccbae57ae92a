"""Each model's runtime, chosen by measurement: ``zooserve store select [NAMES... | --all]``.

For every runtime that runs on this device (``zooserve/handler/runtimes/``), the model is exported as an
archive build would export it, loaded as a worker would load it, and checked against eager PyTorch on
the test photographs and on random inputs: it agrees when its largest logit difference is at most
``TOLERANCE`` x the largest eager logit and its top-5 is identical on every input (float16, on CUDA:
identical top-5 on the photographs). The runtimes that agree are timed at the serving batch size, model
only, with the threads of a serving worker, in interleaved rounds (every round runs each runtime once, in
a shuffled order, so a drift of the machine's speed falls on all alike); the fastest by median wins. A
runtime whose export fails, that disagrees, or whose worker takes longer than ``MAX_LOAD_S`` to load it is
left out with the reason written down. A model whose runtimes would not all fit in memory at once
(``fits_at_once``) keeps none loaded: each is loaded afresh from its artefact for every round, and one
that cannot start in time is not timed at all (the entry's ``loaded_at_once`` says which way it ran).

``--side-by-side`` measures as many models at once as the archives have serving workers, each process
pinned to its own cores (a worker's threads' worth), as the workers share the machine when serving: each
runtime is timed beside a busy neighbour, as it will serve, and the whole zoo takes about half the time
on two cores. Every entry records the cores it was measured on and how many ran side by side.

The results go to zooserve/zoo/data/runtimes.json (``zooserve.zoo.runtimes``), which archive builds read,
so a build exports only the chosen runtime's artefact and measures nothing.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil
import torch

from zooserve.handler.decode import decode
from zooserve.handler.preprocess import Preprocessor
from zooserve.handler.runtimes import (
    RUNTIME_NAMES,
    ModelSource,
    Runtime,
    RuntimeOptions,
    load_runtime,
    runtime_class,
)
from zooserve.machine import describe_machine
from zooserve.zoo import create_model, model_info
from zooserve.zoo.catalog import catalog_entry

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "tests" / "data"
PHOTO_SUFFIXES = (".jpg", ".png", ".webp", ".bmp")
TOLERANCE = 1e-3  # largest |logit difference| allowed, relative to the largest |eager logit|
TOPK = 5
RANDOM_INPUTS = 8
# A runtime whose artefact takes longer to load in a worker (torch.compile's: tens of seconds on one core) is
# not chosen: every cold start of the model would outlast the gateway's default wait for a load
# (ZOO_LOAD_WAIT_S) and answer 503, and a restarted worker would be out that long. Unless eager itself
# takes longer (a load includes a first batch, seconds for the largest networks): then a runtime that
# starts no later than eager is no worse.
MAX_LOAD_S = 10.0
# Memory a loaded runtime holds per parameter, with room for its working memory: the float32 weights and as
# much again (an ONNX Runtime session or an OpenVINO compiled model keeps its own copy while loading)
LOADED_BYTES_PER_PARAMETER = 8


@dataclass(frozen=True)
class Candidate:
    runtime: str
    half: bool = False  # float16, on CUDA only

    @property
    def key(self) -> str:
        return self.runtime + ("+fp16" if self.half else "")


def candidates(device: torch.device) -> list[Candidate]:
    """Every runtime that runs on ``device``; on CUDA each again in float16 (TensorRT's, for onnxruntime)."""
    runtimes = [Candidate(name) for name in RUNTIME_NAMES if runtime_class(name).supports(device)]
    return runtimes + ([replace(c, half=True) for c in runtimes] if device.type == "cuda" else [])


def check_inputs(name: str, photos: int | None = None, random_inputs: int = RANDOM_INPUTS,
                 seed: int = 0) -> tuple[torch.Tensor, int]:
    """The test photographs as the handler preprocesses them (the first ``photos`` of them; all by
    default; none where the folder is absent, as in a container), then seeded random normal images;
    the inputs and how many of them are photographs."""
    preprocess = model_info(name).preprocess
    preprocessor = Preprocessor(preprocess)
    files = sorted(p for p in PHOTOS.glob("*") if p.suffix in PHOTO_SUFFIXES)[:photos] if PHOTOS.is_dir() else []
    images = [preprocessor.resize_and_crop(decode(p.read_bytes())) for p in files]
    pictures = preprocessor.normalize(torch.stack(images), torch.float32) if images else torch.empty(0, *preprocess.input_size)
    noise = torch.randn(random_inputs, *preprocess.input_size, generator=torch.Generator().manual_seed(seed))
    return torch.cat([pictures, noise]), len(images)


def run_batches(runtime: Runtime, inputs: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    return torch.cat([runtime(batch.to(device, runtime.input_dtype)).float().cpu()
                      for batch in inputs.split(batch_size)])


def compare(reference: torch.Tensor, logits: torch.Tensor, photos: int, half: bool = False) -> dict[str, Any]:
    """How far ``logits`` are from eager's, and whether they agree (see the module's docstring)."""
    if half:  # float16 is kept where it ranks the photographs' classes as float32 does
        reference, logits = reference[:photos], logits[:photos]
    k = min(TOPK, reference.shape[1])
    difference = (logits - reference).abs().max().item()
    scale = reference.abs().max().item()
    same_topk = torch.equal(reference.topk(k).indices, logits.topk(k).indices)
    within = half or difference <= TOLERANCE * scale
    return {"max_abs_diff": difference, "max_abs_logit": scale, "top5_identical": same_topk,
            "agrees": same_topk and within}


def trial(candidate: Candidate, build: Callable[[], torch.nn.Module], directory: Path, inputs: torch.Tensor,
          photos: int, reference: torch.Tensor | None, options: RuntimeOptions,
          batch_size: int) -> tuple[dict[str, Any], Runtime | None, torch.Tensor | None]:
    """Exports ``candidate`` into ``directory``, loads it and checks it against ``reference`` (eager's
    logits; None: this is eager). Its record, the loaded runtime and its logits; on failure the record
    says why and the runtime is None."""
    record: dict[str, Any] = {}
    example = inputs[:2].clone()
    try:
        started = time.perf_counter()
        files = runtime_class(candidate.runtime).export(build(), example, directory)
        record["export_s"] = round(time.perf_counter() - started, 2)
        record["artefact_mib"] = round(sum(f.stat().st_size for f in files) / 2**20, 1)
        started = time.perf_counter()
        runtime = load_candidate(candidate, directory, build, options)
        runtime.warm_up(inputs[:batch_size].to(options.device, runtime.input_dtype))
        record["load_s"] = round(time.perf_counter() - started, 2)
        logits = run_batches(runtime, inputs, batch_size, options.device)
    except Exception as error:  # noqa: BLE001 - whatever an exporter or a runtime raises, this one is out
        return record | {"error": f"{type(error).__name__}: {str(error).strip()[:300]}", "agrees": False}, None, None
    if reference is None:
        return record | {"agrees": True}, runtime, logits
    return record | compare(reference, logits, photos, candidate.half), runtime, logits


def load_candidate(candidate: Candidate, directory: Path, build, options: RuntimeOptions) -> Runtime:
    """The candidate's artefact exported into ``directory``, loaded as a worker loads it."""
    return load_runtime(candidate.runtime, ModelSource(directory, build), replace(options, half=candidate.half))


def throughput(runtime: Runtime, batch: torch.Tensor, seconds: float) -> float:
    """Images per second of ``runtime`` on ``batch``, run back to back for ``seconds``."""
    runtime(batch)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        runtime(batch)
        done += len(batch)
    if batch.is_cuda:
        torch.cuda.synchronize()
    return done / (time.perf_counter() - started)


def interleaved(calls: dict[str, Callable[[], float]], rounds: int, rng: random.Random) -> dict[str, list[float]]:
    """Every call once per round, in an order shuffled every round; the samples of each call."""
    samples: dict[str, list[float]] = {key: [] for key in calls}
    order = list(calls)
    for _ in range(rounds):
        rng.shuffle(order)
        for key in order:
            samples[key].append(calls[key]())
    return samples


def choose(records: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The fastest candidate (by median images/s) of those that agree with eager and start in time, and why."""
    eager_load_s = records["eager"].get("load_s", 0.0)
    timed = {key: r for key, r in records.items() if starts_in_time(key, r, eager_load_s) and "median_img_s" in r}
    best = max(timed, key=lambda key: timed[key]["median_img_s"])
    left_out = [f"{key}: {why}" for key, why in reasons_left_out(records, timed).items()]
    speed = timed[best]["median_img_s"] / records["eager"]["median_img_s"]
    reason = (f"{best}: {speed:.2f}x eager, the fastest of {', '.join(sorted(timed))}" if best != "eager"
              else f"eager: the fastest of {', '.join(sorted(timed))}")
    return best, reason + "".join(f"; {why}" for why in left_out)


def decision(records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The choice as an entry of runtimes.json holds it."""
    runtime, reason = choose(records)
    return {"runtime": runtime.removesuffix("+fp16"), "half": runtime.endswith("+fp16"), "reason": reason}


def starts_in_time(key: str, record: dict[str, Any], eager_load_s: float) -> bool:
    """Agrees with eager, and loads within MAX_LOAD_S or no slower than eager."""
    allowed = max(MAX_LOAD_S, eager_load_s)
    return bool(record.get("agrees")) and (key == "eager" or record.get("load_s", 0) <= allowed)


def reasons_left_out(records: dict[str, dict[str, Any]], kept) -> dict[str, str]:
    """Why each candidate not in ``kept`` is out."""
    eager_load_s = records["eager"].get("load_s", 0.0)
    return {key: why_left_out(record, eager_load_s) for key, record in records.items() if key not in kept}


def why_left_out(record: dict[str, Any], eager_load_s: float) -> str:
    if record.get("agrees"):
        return (f"its worker takes {record['load_s']:g} s to load it (at most {MAX_LOAD_S:g} s, or eager's "
                f"{eager_load_s:g} s)")
    if "error" in record:
        return f"failed ({record['error'][:120]})"
    return (f"disagrees with eager (max |diff| {record['max_abs_diff']:.2g} against {TOLERANCE:g} x "
            f"{record['max_abs_logit']:.2g}, top-5 {'identical' if record['top5_identical'] else 'different'})")


def select(name: str, batch_size: int, threads: int, rounds: int = 3, seconds: float = 2.0,
           device: torch.device = torch.device("cpu"), seed: int = 0,
           runtimes: tuple[str, ...] = RUNTIME_NAMES) -> dict[str, Any]:
    """The measured choice for ``name`` (fixed-seed weights) among ``runtimes`` (eager always): the chosen
    runtime, the reason, every candidate's differences, load time and images/s per round."""
    torch.set_num_threads(threads)
    load_before = os.getloadavg()[0]  # how busy the machine was: figures taken beside other work are noisy
    inputs, photos = check_inputs(name, seed=seed)
    options = RuntimeOptions(device=device, threads=threads)
    wanted = [c for c in candidates(device) if c.runtime in {"eager", *runtimes}]
    with tempfile.TemporaryDirectory(prefix=f"zoo-select-{name}-") as tmp:
        build = lambda: create_model(name, seed=seed)  # noqa: E731 - a fresh model for every export
        at_once = fits_at_once(name, len(wanted))
        records, loaders = try_candidates(wanted, build, Path(tmp), inputs, photos, options, batch_size, at_once)
        batch = inputs[:batch_size].to(device)
        calls = {key: (lambda load=load: timed(load, batch, seconds)) for key, load in loaders.items()}
        for key, samples in interleaved(calls, rounds, random.Random(seed)).items():
            records[key] |= {"img_s": [round(s, 2) for s in samples], "median_img_s": round(statistics.median(samples), 2)}
    machine = describe_machine()
    return decision(records) | {
        "measured": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
        "machine": f"{machine['cpu']}, {machine['cores']} cores" + (f", {machine['gpu']}" if device.type == "cuda" else ""),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "device": device.type, "batch_size": batch_size, "threads": threads, "rounds": rounds,
        "seconds_per_round": seconds, "loaded_at_once": at_once, "candidates": records}


def fits_at_once(name: str, runtimes: int) -> bool:
    """Whether all the model's runtimes can stay loaded through the timing rounds in half the memory free
    now (the other half is a neighbour's, measured side by side). amoebanet_a_n6_f448's four runtimes of
    468M parameters could not: its selection was killed for memory."""
    needed = catalog_entry(name)["params"] * LOADED_BYTES_PER_PARAMETER * runtimes
    return needed <= psutil.virtual_memory().available / 2


def timed(load: Callable[[], Runtime], batch: torch.Tensor, seconds: float) -> float:
    """``throughput`` of the runtime ``load`` gives, which is released afterwards unless something else holds it."""
    runtime = load()
    try:
        return throughput(runtime, batch.to(runtime.input_dtype), seconds)
    finally:
        del runtime
        gc.collect()


def try_candidates(wanted: list[Candidate], build, workdir: Path, inputs: torch.Tensor, photos: int,
                   options: RuntimeOptions, batch_size: int,
                   at_once: bool = True) -> tuple[dict[str, dict], dict[str, Callable[[], Runtime]]]:
    """Every candidate's record (eager tried first), and a loader for each that agrees with eager and can be
    timed: with ``at_once``, the runtime loaded by the check, kept; without, a fresh load from its artefact
    for every round (the check's is released), and only for the runtimes that start in time (a slow one
    cannot be chosen: loading it for every round would only add to the selection's time)."""
    records, loaders, reference = {}, {}, None
    for candidate in wanted:
        directory = workdir / candidate.key
        directory.mkdir()
        record, runtime, logits = trial(candidate, build, directory, inputs, photos, reference, options, batch_size)
        if candidate.key == "eager":
            if runtime is None:
                raise RuntimeError(f"the model does not run in eager PyTorch: {record['error']}")
            reference = logits
        records[candidate.key] = record
        if at_once and record["agrees"]:
            loaders[candidate.key] = lambda kept=runtime: kept
        elif starts_in_time(candidate.key, record, records["eager"].get("load_s", 0.0)):
            loaders[candidate.key] = lambda c=candidate, d=directory: load_candidate(c, d, build, options)
        elif record["agrees"]:
            record["not_timed"] = "it cannot be chosen, and its runtimes are loaded afresh for each round"
        del runtime
        gc.collect()
    return records, loaders


def select_side_by_side(names: list[str], processes: int, threads: int, **options) -> Iterator[tuple[str, dict]]:
    """``select`` for every model, ``processes`` at a time, each process pinned to its own ``threads`` cores;
    (name, entry) as each finishes. The heaviest models go first, so that no process is left with one
    at the end."""
    cores = sorted(os.sched_getaffinity(0))
    if processes * threads > len(cores):
        raise ValueError(f"{processes} processes x {threads} threads need more than the {len(cores)} cores here")
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or torch state inherited
    core_sets = context.Queue()
    for index in range(processes):
        core_sets.put(cores[index * threads:(index + 1) * threads])
    heaviest_first = sorted(names, key=lambda name: catalog_entry(name)["macs"], reverse=True)
    work = [(name, threads, processes, options) for name in heaviest_first]
    # a fresh process per model (its memory is returned), which borrows a free core set for its run
    with context.Pool(processes, initializer=_share, initargs=(core_sets,), maxtasksperchild=1) as pool:
        yield from pool.imap_unordered(_select_pinned, work)


_core_sets = None  # in a selection process: the queue of free core sets


def _share(core_sets) -> None:
    global _core_sets
    _core_sets = core_sets


def _select_pinned(job: tuple[str, int, int, dict]) -> tuple[str, dict]:
    name, threads, processes, options = job
    cores = _core_sets.get()
    try:
        os.sched_setaffinity(0, cores)
        return name, select(name, threads=threads, **options) | {"cores": cores, "side_by_side": processes}
    finally:
        _core_sets.put(cores)
