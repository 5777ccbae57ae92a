"""Shared fixtures: the real test photographs in tests/data, and formats derived from them."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zooserve.torchserve import TorchServePorts, free_port  # noqa: F401 (free_port: the tests' own name too)

DATA = Path(__file__).parent / "data"

# Tests never download weights: archives are fixed-seed unless a test asks for published weights (and then
# from caches it fills itself), and the hubs stay offline (Hugging Face's switch, which zooserve applies to
# every hub). Set before anything imports huggingface_hub, for this process and the ones tests start.
os.environ["ZOO_WEIGHTS"] = "fixed-seed"
os.environ["HF_HUB_OFFLINE"] = "1"

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def photo(name: str) -> bytes:
    return (DATA / name).read_bytes()


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def derived_images() -> dict[str, bytes]:
    """Formats the photographs do not cover, made from them: GIF, TIFF, 16-bit PNG, EXIF-rotated JPEG."""
    cat = Image.open(DATA / "chelsea.png").convert("RGB")
    frames = [cat, cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    grey16 = np.asarray(cat.convert("L"), dtype=np.uint16) * 257  # full 16-bit range
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    return {
        "animated.gif": encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
        "multipage.tiff": encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]),
        "grey16.png": encode(Image.fromarray(grey16), "PNG"),
        "palette.png": encode(cat.convert("P"), "PNG"),
        "rotated.jpg": encode(cat, "JPEG", exif=exif.tobytes()),
    }


def torchserve_ports() -> TorchServePorts:
    return TorchServePorts.free()


@pytest.fixture(scope="session")
def catalog_snapshot(tmp_path_factory) -> Path:
    """The catalog snapshot every gateway of the session reads (ZOO_CATALOG_PATH, inherited by the gateways
    the tests start as processes too): every registry entry, as `zooserve store build` writes it."""
    from zooserve.store.catalog import write_catalog

    path = write_catalog(None, tmp_path_factory.mktemp("catalog") / "catalog.json")
    os.environ["ZOO_CATALOG_PATH"] = str(path)
    return path
