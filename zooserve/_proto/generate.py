"""Compiles ``proto/*.proto`` into modules of this package, at build time (``pip install``, ``make venv``, the
Dockerfile); the output is never committed.

Run as ``python -m zooserve._proto.generate`` or, by setup.py, from its file path (it imports nothing of
zooserve). Each proto is compiled as if it lay at ``zooserve/_proto/<module>.proto``, so the generated stubs
import their messages as ``zooserve._proto.<module>_pb2``: nothing lands on sys.path under a top-level name.

The messages are registered in this package's own descriptor pool (``zooserve._proto.POOL``), not in
protobuf's default one: the Open Inference Protocol's messages (package ``inference``) are also registered by
tritonclient.grpc and KServe under other file names, and protobuf refuses the same symbol from two files.
Wire names (``inference.GRPCInferenceService``, ``org.pytorch.serve.grpc.inference...``) stay as they are.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROTO_DIR = PACKAGE_DIR.parents[1] / "proto"
# module name in zooserve._proto -> proto file under proto/
MODULES = {
    "zooserve": "zooserve/v1/zooserve.proto",  # our service, zooserve.v1.ZooService
    "torchserve": "torchserve/inference.proto",  # TorchServe's inference API (wire-compatible)
    "open_inference": "inference/grpc_service.proto",  # the Open Inference Protocol (KServe v2)
}
DEFAULT_POOL = re.compile(r"_descriptor_pool\.Default\(\)")
PRIVATE_POOL = "__import__('zooserve._proto', fromlist=['POOL']).POOL"


def _outputs(module: str) -> list[Path]:
    return [PACKAGE_DIR / f"{module}_pb2.py", PACKAGE_DIR / f"{module}_pb2_grpc.py"]


def generate() -> None:
    from grpc_tools import protoc

    include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto shipped with grpcio-tools
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "zooserve" / "_proto"
        staged.mkdir(parents=True)
        for module, proto in MODULES.items():
            shutil.copyfile(PROTO_DIR / proto, staged / f"{module}.proto")
        args = ["protoc", f"-I{tmp}", f"-I{include}", f"--python_out={tmp}", f"--grpc_python_out={tmp}"]
        if protoc.main(args + [f"zooserve/_proto/{module}.proto" for module in MODULES]) != 0:
            raise RuntimeError(f"protoc failed on {PROTO_DIR}")
        for module in MODULES:
            for out in _outputs(module):
                text = (staged / out.name).read_text()
                if out.name.endswith("_pb2.py"):
                    text, count = DEFAULT_POOL.subn(PRIVATE_POOL, text)
                    if count != 1:
                        raise RuntimeError(f"{out.name}: expected one descriptor pool call, found {count}")
                out.write_text(text)


if __name__ == "__main__":
    generate()
    print(f"generated {', '.join(MODULES)} in {PACKAGE_DIR}", file=sys.stderr)
