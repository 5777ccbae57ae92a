"""Builds ``model_store/<name>.mar`` for registry entries with torch-model-archiver.

An archive holds the one handler and a model-config.yaml naming the architecture. Weights come, in this
order, from a file given for the model, from the library's published weights (``pretrained``: read from
the library's cache, or downloaded by the library when its hub answers), or from the fixed seed. Fixed-seed
archives hold no weights at all: the handler rebuilds the initialization from the seed, which is exactly
reproducible, so we do not zip hundreds of megabytes of random numbers. Carried weights are checked
against the model and stored as safetensors (``published.py`` fetches the published ones).

The runtime is the one measured for the model (``zooserve store select``, kept in
zooserve/zoo/data/runtimes.json), or ``--runtime``. Its artefact (an ONNX file, an OpenVINO IR, the
compiler's cache), which holds the weights, is exported here, checked against eager on a few inputs and
carried in the archive; an export that fails or disagrees leaves the archive on eager, saying why.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from model_archiver.model_archiver_config import ModelArchiverConfig
from model_archiver.model_packaging import generate_model_archive

from zooserve.handler.runtimes import RuntimeOptions
from zooserve.handler.service import HandlerConfig
from zooserve.zoo import create_model, model_info
from zooserve.zoo.runtimes import DEFAULT_RUNTIME, load_choices
from zooserve.zoo.weights import save_weights

from .published import PublishedWeights
from .select import Candidate, check_inputs, trial

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
HANDLER = ROOT / "zooserve" / "handler" / "zoo_handler.py"
DEFAULT_STORE = ROOT / "model_store"
WEIGHTS_FILE = "weights.safetensors"
ARCHIVE_VERSION = "1.0"

# Worker and batching defaults, chosen by measurement (docs/tuning.md, `python -m loadtests.tune`): two
# single-threaded workers beat one two-threaded worker on 2 cores (a thread stalled by the frontend or the
# gateway holds up its partner thread at every parallel region; a single-threaded worker only slows
# itself), and batches of 4 with a 5 ms delay amortize per-call overhead without hurting light load.
# The handler gives each worker cores / workers torch threads, so larger machines get more threads each.
WORKERS = 2
BATCH_SIZE = 4
MAX_BATCH_DELAY_MS = 5
RESPONSE_TIMEOUT_S = 120
HEAVY_RESPONSE_TIMEOUT_S = 600  # 100+ GMAC networks take seconds per image on a small CPU
# the build's check of an exported artefact against eager: a few photographs and random images (the
# selection checked many more; this catches an export that went wrong on this machine)
BUILD_CHECK_PHOTOS = 2
BUILD_CHECK_RANDOM = 2
@dataclass
class ArchiveOptions:
    seed: int = 0
    weights: dict[str, Path] = field(default_factory=dict)  # model name -> local weights file
    pretrained: bool = False  # the libraries' published weights where they can be had (else fixed-seed)
    published: PublishedWeights = field(default_factory=PublishedWeights)
    batch_size: int = BATCH_SIZE
    max_batch_delay_ms: int = MAX_BATCH_DELAY_MS
    workers: int = WORKERS
    runtime: str | None = None  # None: the measured choice (zooserve/zoo/data/runtimes.json), else this one
    # None: every model on its measured runtime; else only these, the others on eager (a build that exports
    # little: the test image)
    measured_only: frozenset[str] | None = None


@dataclass
class RuntimeChoice:
    name: str
    selection: dict  # why: the measurement behind it, or what overrode it
    files: list[Path] = field(default_factory=list)  # its artefact, to carry in the archive


def model_config(name: str, options: ArchiveOptions, weights: str, runtime: RuntimeChoice) -> dict:
    """The archive's model-config.yaml: TorchServe's worker and batch settings, then our ``zoo`` section."""
    info = model_info(name)
    measured_on_cuda = runtime.selection.get("device") == "cuda"
    zoo = HandlerConfig(
        model=name,
        version=ARCHIVE_VERSION,
        seed=options.seed,
        weights=weights,
        weights_file=None if weights == "fixed-seed" else WEIGHTS_FILE,
        runtime=runtime.name,
        selection=runtime.selection,
        **({"half": runtime.selection["half"]} if measured_on_cuda else {}),
    )
    return {
        "minWorkers": options.workers,
        "maxWorkers": options.workers,
        "batchSize": options.batch_size,
        "maxBatchDelay": options.max_batch_delay_ms,
        "responseTimeout": HEAVY_RESPONSE_TIMEOUT_S if info.heavy else RESPONSE_TIMEOUT_S,
        "zoo": zoo.model_dump(exclude_defaults=False),
    }


def _write_weights(name: str, options: ArchiveOptions, workdir: Path) -> str:
    """Saves the weights to carry, if any, into ``workdir``; returns where the weights come from."""
    if name in options.weights:
        model, origin = create_model(name, weights=options.weights[name]), "file"
    elif options.pretrained and model_info(name).pretrained is not None:
        model, origin = options.published.model(name), "pretrained"
        if model is None:
            return "fixed-seed"
    else:
        return "fixed-seed"
    save_weights(model, workdir / WEIGHTS_FILE)
    return origin


def chosen_runtime(name: str, options: ArchiveOptions) -> RuntimeChoice:
    if options.runtime:
        return RuntimeChoice(options.runtime, {"reason": f"--runtime {options.runtime} given to the build"})
    if options.measured_only is not None and name not in options.measured_only:
        return RuntimeChoice(DEFAULT_RUNTIME, {"reason": "eager: the build left its measured runtime out (--measured-only)"})
    entry = load_choices().get(name)
    if entry is None:
        return RuntimeChoice(DEFAULT_RUNTIME, {"reason": "not measured (zooserve store select): eager"})
    return RuntimeChoice(entry["runtime"], entry)


def export_runtime(name: str, choice: RuntimeChoice, build, workdir: Path) -> RuntimeChoice:
    """``choice`` with its artefact exported into ``workdir`` and checked against eager; eager, with the
    reason added to its selection, when the export fails or disagrees."""
    if choice.name == DEFAULT_RUNTIME:
        return choice
    inputs, photos = check_inputs(name, photos=BUILD_CHECK_PHOTOS, random_inputs=BUILD_CHECK_RANDOM)
    options, batch = RuntimeOptions(threads=torch.get_num_threads()), len(inputs)
    _, _, reference = trial(Candidate(DEFAULT_RUNTIME), build, workdir, inputs, photos, None, options, batch)
    directory = workdir / "runtime"
    directory.mkdir()
    record, _, _ = trial(Candidate(choice.name), build, directory, inputs, photos, reference, options, batch)
    if record["agrees"]:
        return RuntimeChoice(choice.name, choice.selection, sorted(directory.iterdir()))
    why = record.get("error") or f"disagrees with eager here (max |diff| {record['max_abs_diff']:.2g})"
    return RuntimeChoice(DEFAULT_RUNTIME, choice.selection | {"build_fallback": f"{choice.name} left for eager: {why}"})


def _model_builder(name: str, options: ArchiveOptions, origin: str, workdir: Path):
    """Builds the model as the archive's workers will run it (its weights file or its seed)."""
    weights = workdir / WEIGHTS_FILE if origin != "fixed-seed" else None
    return lambda: create_model(name, weights=weights, seed=options.seed)


def build_archive(name: str, store: Path = DEFAULT_STORE, options: ArchiveOptions | None = None) -> Path:
    options = options or ArchiveOptions()
    model_info(name)  # an unknown name fails here, with close matches
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"zoo-{name}-") as tmp:
        workdir = Path(tmp)
        origin = _write_weights(name, options, workdir)
        runtime = export_runtime(name, chosen_runtime(name, options), _model_builder(name, options, origin, workdir),
                                 workdir)
        if runtime.selection.get("build_fallback"):
            log.warning("%s: %s", name, runtime.selection["build_fallback"])
        config_path = workdir / "model-config.yaml"
        config_path.write_text(yaml.safe_dump(model_config(name, options, origin, runtime), sort_keys=False))
        generate_model_archive(
            ModelArchiverConfig(
                model_name=name,
                handler=str(HANDLER),
                version=ARCHIVE_VERSION,
                serialized_file=str(workdir / WEIGHTS_FILE) if origin != "fixed-seed" else None,
                config_file=str(config_path),
                extra_files=",".join(str(f) for f in runtime.files) or None,
                export_path=str(store),
                archive_format="default",
                force=True,
            )
        )
    return store / f"{name}.mar"


def archive_weights(path: Path) -> str:
    """Where the weights of a built archive come from (its model-config.yaml's ``zoo.weights``)."""
    with zipfile.ZipFile(path) as archive:
        return yaml.safe_load(archive.read("model-config.yaml"))["zoo"]["weights"]


def wants_rebuild(path: Path, name: str, options: ArchiveOptions) -> bool:
    """Whether an existing archive should be rebuilt: it is missing, or it serves the fixed seed where the
    published weights are asked for and can be had now (a store built offline catches up once online)."""
    if not path.exists():
        return True
    if not options.pretrained or model_info(name).pretrained is None or archive_weights(path) != "fixed-seed":
        return False
    return options.published.obtainable(name)


def remove_stale(store: Path, keep: set[str]) -> list[Path]:
    """Archives in the store whose model is no longer in the registry."""
    stale = [p for p in store.glob("*.mar") if p.stem not in keep]
    for path in stale:
        path.unlink() if path.is_file() else shutil.rmtree(path)
    return stale
