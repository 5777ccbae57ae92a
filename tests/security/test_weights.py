"""Weights are data, never code: a pickle checkpoint carrying a payload is refused and the payload never runs.

The payload is real: an object whose __reduce__ makes unpickling create a marker file, and a control loads
the checkpoint with weights_only=False in a separate process to show that the payload does run there. Then
the same file goes through every way we load weights: the zoo (zooserve/zoo/weights.py), the handler's
service, and a model archive registered in a real TorchServe. Last, a source check that no loading call in
server/ can unpickle code.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from zooserve.handler.service import ClassifierService, HandlerConfig
from zooserve.store.build import WEIGHTS_FILE, ArchiveOptions, build_archive
from zooserve.zoo import create_model
from zooserve.zoo.weights import save_weights

from .conftest import MODEL

ROOT = Path(__file__).resolve().parents[2]


class Payload:
    """Unpickling this runs exec: what a malicious checkpoint does (here it only creates ``marker``)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('the payload ran')",)


def evil_checkpoint(path: Path, marker: Path) -> Path:
    """The model's real state dict with one more entry, the payload: a file that fits the model otherwise."""
    state = dict(create_model(MODEL).state_dict()) | {"extra": Payload(marker)}
    torch.save({"state_dict": state}, path)
    return path


@pytest.fixture
def evil(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "payload-ran"
    return evil_checkpoint(tmp_path / "weights.pt", marker), marker


def test_the_payload_is_live(evil):
    """Control: unpickled the unsafe way (in another process), the checkpoint runs its payload."""
    path, marker = evil
    code = f"import torch; torch.load({str(path)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False, capture_output=True, timeout=120)
    assert marker.read_text() == "the payload ran"


def test_the_zoo_refuses_the_checkpoint(evil):
    path, marker = evil
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        create_model(MODEL, weights=path)
    assert not marker.exists()


def test_an_environment_override_does_not_unlock_it(evil, monkeypatch):
    """torch's TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD turns off the default, but not an explicit weights_only=True."""
    path, marker = evil
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        create_model(MODEL, weights=path)
    assert not marker.exists()


def test_a_pickle_named_safetensors_is_refused(evil):
    path, marker = evil
    disguised = path.with_name("weights.safetensors")
    disguised.write_bytes(path.read_bytes())
    with pytest.raises(Exception):  # safetensors reads a JSON header and raw tensors: no unpickling at all
        create_model(MODEL, weights=disguised)
    assert not marker.exists()


def test_a_clean_state_dict_still_loads(tmp_path):
    """The refusals above are about the payload: the same layout without it loads."""
    torch.save({"state_dict": create_model(MODEL, seed=3).state_dict()}, tmp_path / "clean.pt")
    loaded = create_model(MODEL, weights=tmp_path / "clean.pt")
    assert torch.equal(next(iter(loaded.state_dict().values())),
                       next(iter(create_model(MODEL, seed=3).state_dict().values())))


def test_the_handler_refuses_pickles(evil):
    path, marker = evil
    model_dir = path.parent
    with pytest.raises(ValueError, match="safetensors"):  # a pickle is not even read
        HandlerConfig(model=MODEL, weights="file", weights_file=path.name)
    with pytest.raises(ValueError, match="top level"):  # nor a file outside the archive
        HandlerConfig(model=MODEL, weights="file", weights_file=f"../{model_dir.name}/weights.safetensors")
    (model_dir / WEIGHTS_FILE).write_bytes(path.read_bytes())
    config = HandlerConfig(model=MODEL, weights="file", weights_file=WEIGHTS_FILE, warmup=False)
    with pytest.raises(Exception):
        ClassifierService(config, model_dir, torch.device("cpu"))
    assert not marker.exists()


# --- through a model archive, in a real TorchServe ---

def poisoned_archive(store: Path, name: str, weights: bytes, weights_file: str, tmp: Path) -> Path:
    """A real archive of MODEL with real weights, then its weights swapped for ``weights`` under
    ``weights_file`` (and its model-config.yaml naming that file), as an attacker with write access to a
    store, or a downloaded archive, would have it."""
    save_weights(create_model(MODEL), tmp / "real.safetensors")
    # on eager: the runtime whose worker reads the weights file (an exported artefact carries its own)
    built = build_archive(MODEL, tmp / "build", ArchiveOptions(weights={MODEL: tmp / "real.safetensors"}, runtime="eager"))
    target = store / f"{name}.mar"
    with zipfile.ZipFile(built) as source, zipfile.ZipFile(target, "w") as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "model-config.yaml":
                config = yaml.safe_load(data)
                config["zoo"]["weights_file"] = weights_file
                data = yaml.safe_dump(config).encode()
            if item.filename == WEIGHTS_FILE:
                item.filename, data = weights_file, weights
            out.writestr(item, data)
    return target


# what the worker's log says when it refuses each: the weights were really read, and refused there
REFUSALS = {WEIGHTS_FILE: "SafetensorError", "weights.pt": "weights_file must be a .safetensors file"}


@pytest.mark.parametrize("weights_file", sorted(REFUSALS))
def test_torchserve_never_runs_the_payload_of_an_archive(torchserve, management, secure_store, tmp_path,
                                                         weights_file):
    marker = tmp_path / "payload-ran"
    pickle_bytes = evil_checkpoint(tmp_path / "evil.pt", marker).read_bytes()
    name = f"poisoned_{Path(weights_file).suffix[1:]}"
    poisoned_archive(secure_store, name, pickle_bytes, weights_file, tmp_path)
    token = torchserve.keys().management
    try:
        # model_name: the archive's manifest says MODEL, which may be registered already
        response = management.request("POST", "/models", token, timeout=300, params={
            "url": f"{name}.mar", "model_name": name, "initial_workers": "1", "synchronous": "true"})
    finally:
        management.request("DELETE", f"/models/{name}", token)
        (secure_store / f"{name}.mar").unlink()
    # TorchServe gives up after its worker failed to load, several times
    assert response.status_code == 500 and "Failed to start workers" in response.text, response.text
    assert worker_logged(torchserve, name, REFUSALS[weights_file]), "the worker refused something else"
    assert not marker.exists()


def worker_logged(torchserve, model: str, text: str, timeout: float = 30) -> bool:
    """Whether a worker of ``model`` logged ``text`` (waiting a little: TorchServe's logging is asynchronous)."""
    path, deadline = torchserve.workdir / "logs" / "model_log.log", time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        if any(f"-{model}_" in line and text in line for line in lines):
            return True
        time.sleep(0.5)
    return False


# --- the source: no loading call in server/ can unpickle code ---

UNSAFE_CALLS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("dill", "load"),
                ("dill", "loads"), ("joblib", "load"), ("yaml", "load"), ("yaml", "unsafe_load"),
                ("yaml", "full_load"), ("marshal", "loads"), ("shelve", "open")}


def torch_load_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """The names torch goes by in a module (``import torch as t``), and those of torch.load itself."""
    modules, functions = {"torch"}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "torch"}
        elif isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization"):
            functions |= {a.asname or a.name for a in node.names if a.name == "load"}
    return modules, functions


def unsafe_loads(source: str) -> list[str]:
    """Calls in ``source`` that could run code from a file: torch.load without weights_only=True, pickle and
    its relatives, yaml's non-safe loaders, numpy.load with allow_pickle."""
    tree = ast.parse(source)
    modules, functions = torch_load_names(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = ast.unparse(node.func)
        owner, _, attr = func.rpartition(".")
        keywords = {k.arg: k.value for k in node.keywords}
        if func in functions or (attr == "load" and (owner in modules or owner.endswith("torch.serialization"))):
            weights_only = keywords.get("weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                found.append(f"line {node.lineno}: {func} without weights_only=True")
        elif (owner.split(".")[-1], attr) in UNSAFE_CALLS:
            found.append(f"line {node.lineno}: {func}")
        elif attr == "load" and owner in ("np", "numpy") and "allow_pickle" in keywords:
            allow = keywords["allow_pickle"]
            if not (isinstance(allow, ast.Constant) and allow.value is False):
                found.append(f"line {node.lineno}: {func} with allow_pickle")
    return found


def test_the_source_check_finds_what_it_looks_for():
    sample = ("torch.load(p)\ntorch.load(p, weights_only=False)\ntorch.load(p, weights_only=flag)\n"
              "pickle.loads(b)\nyaml.load(t)\nnp.load(p, allow_pickle=True)\nfrom torch import load as tl\n"
              "tl(p)\nimport torch as T\nT.load(p)\ntorch.serialization.load(p)\n"
              # and what is fine: an explicit weights_only=True, safe loaders, another module's load()
              "torch.load(p, map_location='cpu', weights_only=True)\nyaml.safe_load(t)\nnp.load(p)\n"
              "from zooserve.protos import load\nload('x')\njson.load(f)\n")
    lines = sorted(int(f.split(":")[0].split()[1]) for f in unsafe_loads(sample))
    assert lines == [1, 2, 3, 4, 5, 6, 8, 10, 11]


def test_no_unsafe_load_in_server():
    files = [p for p in (ROOT / "zooserve").rglob("*.py") if "_generated" not in p.parts]
    assert len(files) > 50
    found = {str(p.relative_to(ROOT)): unsafe_loads(p.read_text()) for p in files}
    assert {k: v for k, v in found.items() if v} == {}
    loads = sum("torch.load(" in p.read_text() for p in files)
    assert loads >= 1, "zooserve/zoo/weights.py reads state dicts with torch.load: the check must see it"
