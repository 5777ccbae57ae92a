"""The Open Inference Protocol (KServe v2) over the core, independent of the wire: what a model looks like
as tensors, and how one inference request becomes ``Gateway.predict`` calls and its results tensors.

A model has one input, ``image``: a BYTES tensor of shape ``[N]``, one encoded image (JPEG, PNG, ...)
per element. It answers three outputs of shape ``[N, k]`` (k = the ``topk`` parameter, default 5):
``probabilities`` (FP32, best first), ``labels`` (BYTES) and ``indices`` (INT64, class indices).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from zooserve import __version__

from ..core import Gateway, PredictRequest, PredictResult, check_version
from ..errors import BadRequest, GatewayError, NotFound
from ..experiments.layer import Experiments

SERVER_NAME = "zooserve"
SERVER_VERSION = __version__
EXTENSIONS = ("binary_tensor_data",)
PLATFORM = "pytorch_torchserve"
INPUT = "image"
OUTPUTS = ("probabilities", "labels", "indices")
MAX_BATCH = 32  # images in one request; each is one prediction through the core
DTYPES = {"FP32": "<f4", "INT64": "<i8"}  # raw (binary) layout of the numeric outputs: little-endian
# The parameters acted on, per binding; any other (sequence_id, priority, shared memory, classification...)
# is refused rather than ignored, so that a client never believes an option it sent took effect.
REST_PARAMETERS = {"request": ("topk", "timeout", "binary_data_output"), "input": ("binary_data_size",),
                   "output": ("binary_data",)}
GRPC_PARAMETERS = {"request": ("topk", "timeout"), "input": (), "output": ()}


def model_metadata(gateway: Gateway, name: str, version: str | None = None) -> dict[str, Any]:
    check_model(gateway, name, version)
    return {
        "name": name, "versions": [gateway.catalog.archive_version], "platform": PLATFORM,
        "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, -1]},
            {"name": "labels", "datatype": "BYTES", "shape": [-1, -1]},
            {"name": "indices", "datatype": "INT64", "shape": [-1, -1]},
        ],
    }


def check_name(gateway: Gateway, experiments: Experiments, name: str, version: str | None) -> None:
    """What the core checks first, for a binding to check before it reads a body: the name is in the
    catalog (or names an experiment, whose variants the layer picks) and the version is one we build."""
    if experiments.get(name) is None:
        check_model(gateway, name, version)


def check_model(gateway: Gateway, name: str, version: str | None) -> None:
    """NotFound for a name outside the catalog (with close matches) or a version we never built."""
    gateway.catalog.info(name)
    built = gateway.catalog.archive_version
    if version and version != built:
        raise NotFound(f"model {name!r} has no version {version[:80]!r} (versions: {built})", code="unknown_version")


def server_ready(gateway: Gateway) -> bool:
    """The gateway routes requests (a backend that is down fails only its own models' requests)."""
    return gateway.readiness()[0]


async def model_ready(gateway: Gateway, name: str, version: str | None = None) -> bool:
    """Servable now: in the catalog and its backend answers (a model is registered on first use)."""
    check_model(gateway, name, version)
    return await gateway.model_ready(name)


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    data: list[Any]  # flat, row-major; str for BYTES outputs

    def raw(self) -> bytes:
        """The binary tensor data representation: little-endian numbers, length-prefixed BYTES elements."""
        if self.datatype == "BYTES":
            return encode_bytes([item.encode() if isinstance(item, str) else item for item in self.data])
        return np.asarray(self.data, dtype=DTYPES[self.datatype]).tobytes()


def decode_bytes(raw: bytes, what: str = INPUT) -> list[bytes]:
    """The elements of a BYTES tensor in binary form: each a 4-byte little-endian length, then the bytes."""
    items, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise BadRequest(f"binary data of {what!r} ends inside an element's 4-byte length", code="bad_tensor")
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise BadRequest(f"binary data of {what!r} is shorter than its element of {size} bytes",
                             code="bad_tensor")
        items.append(raw[offset:offset + size])
        offset += size
    return items


def encode_bytes(items: Iterable[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def check_input(name: str, datatype: str, shape: Iterable[int], count: int) -> None:
    """The one input is ``image``, BYTES, shape [N] (or [N, 1]) matching its N elements."""
    shape = list(shape)
    if name != INPUT:
        raise BadRequest(f"unknown input {name[:80]!r}: the model's one input is {INPUT!r}", code="bad_tensor")
    if datatype != "BYTES":
        raise BadRequest(f"input {INPUT!r} must be BYTES (the encoded image), not {datatype[:20]!r}",
                         code="bad_tensor")
    if not shape or len(shape) > 2 or (len(shape) == 2 and shape[1] != 1) or shape[0] != count:
        raise BadRequest(f"input {INPUT!r} has shape {shape} but {count} element(s): use shape [{count}]",
                         code="bad_tensor")
    if not 1 <= count <= MAX_BATCH:
        raise BadRequest(f"input {INPUT!r} must hold 1 to {MAX_BATCH} images, not {count}", code="bad_tensor")


def check_single_input(count: int) -> None:
    if count != 1:
        raise BadRequest(f"expected exactly one input ({INPUT!r}), got {count}", code="bad_tensor")


def requested_outputs(names: Iterable[str]) -> list[str]:
    """The outputs asked for, in the order asked (all three when none is named)."""
    names = list(names)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise BadRequest(f"unknown output {unknown[0][:80]!r}: outputs are {', '.join(OUTPUTS)}", code="bad_tensor")
    return names or list(OUTPUTS)


def check_parameters(names: Iterable[str], known: Iterable[str], of: str = "") -> None:
    """BadRequest naming the first parameter not in ``known``; ``of`` says whose ("input 'image'")."""
    known = tuple(known)
    unknown = sorted(set(names) - set(known))
    if unknown:
        whose = f" of {of}" if of else ""
        understood = f"the ones understood are {', '.join(known)}" if known else "none is understood"
        raise BadRequest(f"unknown parameter {unknown[0][:80]!r}{whose}: {understood}", code="bad_parameter")


def topk_parameter(parameters: Mapping[str, Any]) -> int | None:
    value = parameters.get("topk")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"parameter topk must be an integer, not {_text(value)!r}", code="bad_topk")
    return value


def timeout_parameter(parameters: Mapping[str, Any]) -> float | None:
    """Triton's ``timeout`` request parameter, in microseconds, as seconds."""
    value = parameters.get("timeout")
    if value is None:
        return None
    # at most int64's maximum, the protocol's type for it (and a float can hold it: 10**400 / 1e6 cannot)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise BadRequest(f"parameter timeout must be a positive integer (microseconds), not {_text(value)!r}",
                         code="bad_request")
    return value / 1e6


def _text(value: Any) -> str:
    """The start of a client's value for a message (str() of a huge int would take long, or raise)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    return str(value)[:40]


async def infer(experiments: Experiments, model: str, version: str | None, images: list[bytes], *, route: str,
                topk: int | None, request_id: str, timeout_s: float | None) -> list[PredictResult]:
    """One prediction through the core (by way of the experiments layer) per image, concurrently; the first
    error fails the request (the core checks the name, version and image, and counts each prediction)."""
    calls = [
        experiments.predict(PredictRequest(model=model, image=image, route=route, version=version, topk=topk,
                                       request_id=request_id if len(images) == 1 else f"{request_id}.{i}",
                                       timeout_s=timeout_s))
        for i, image in enumerate(images)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def output_tensors(results: list[PredictResult], names: list[str]) -> list[Tensor]:
    k = len(results[0].predictions)
    if any(len(r.predictions) != k for r in results):
        raise GatewayError("images of one request answered with different numbers of classes")
    shape = [len(results), k]
    values = {
        "probabilities": ("FP32", [p.score for r in results for p in r.predictions]),
        "labels": ("BYTES", [p.label for r in results for p in r.predictions]),
        "indices": ("INT64", [p.index for r in results for p in r.predictions]),
    }
    return [Tensor(name, values[name][0], shape, values[name][1]) for name in names]


def version_of(given: str | None) -> str | None:
    """An empty version is the default one; a malformed one is refused before the catalog is asked."""
    if not given:
        return None
    check_version(given)
    return given
