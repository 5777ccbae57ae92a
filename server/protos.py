"""Python code generated from ``proto/`` with grpcio-tools, on first use (never committed).

``load("torchserve/inference")`` returns the (messages, services) modules of ``proto/torchserve/inference.proto``,
compiling every proto file into ``server/_generated/`` first when any is newer than its output.
"""

from __future__ import annotations

import importlib
import sys
import threading
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "proto"
OUT_DIR = Path(__file__).resolve().parent / "_generated"
_lock = threading.Lock()


def _stale() -> list[Path]:
    protos = sorted(PROTO_DIR.rglob("*.proto"))
    outputs = [OUT_DIR / p.relative_to(PROTO_DIR).with_name(p.stem + "_pb2.py") for p in protos]
    return [p for p, out in zip(protos, outputs) if not out.exists() or out.stat().st_mtime < p.stat().st_mtime]


def generate(force: bool = False) -> None:
    """Compile proto/**/*.proto into server/_generated (importable as top-level packages from there)."""
    from grpc_tools import protoc

    with _lock:
        protos = sorted(PROTO_DIR.rglob("*.proto")) if force else _stale()
        if not protos:
            return
        OUT_DIR.mkdir(exist_ok=True)
        include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto shipped with grpcio-tools
        args = ["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={OUT_DIR}", f"--grpc_python_out={OUT_DIR}"]
        if protoc.main(args + [str(p.relative_to(PROTO_DIR)) for p in sorted(PROTO_DIR.rglob("*.proto"))]) != 0:
            raise RuntimeError(f"protoc failed on {PROTO_DIR}")
        for folder in [OUT_DIR, *(p for p in OUT_DIR.rglob("*") if p.is_dir())]:
            (folder / "__init__.py").touch()


def load(name: str) -> tuple[ModuleType, ModuleType]:
    """Messages and gRPC stubs for ``proto/<name>.proto``, e.g. ``load("torchserve/inference")``."""
    generate()
    if str(OUT_DIR) not in sys.path:
        sys.path.insert(0, str(OUT_DIR))  # generated modules import each other by their proto paths
    module = name.replace("/", ".")
    return importlib.import_module(f"{module}_pb2"), importlib.import_module(f"{module}_pb2_grpc")


if __name__ == "__main__":
    generate(force=True)
    print(f"generated {OUT_DIR}")
