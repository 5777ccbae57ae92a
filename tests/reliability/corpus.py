"""A corpus of bad inputs: what a careless or hostile client sends, with the answer each must get.

Images are made from the real photographs in tests/data (or from nothing, where that is the point).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tests.conftest import DATA, encode, photo


@dataclass(frozen=True)
class BadImage:
    name: str
    body: bytes
    status: int
    message: str  # the start of the error message


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims a size (its pixel data is a token)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
            + _png_chunk(b"IEND", b""))


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("chelsea.jpg", photo("chelsea.jpg"))
    return buffer.getvalue()


def _damaged(data: bytes, start: int, length: int) -> bytes:
    return data[:start] + bytes(length) + data[start + length:]


def bad_images() -> list[BadImage]:
    cat = Image.open(DATA / "chelsea.png").convert("RGB")
    jpeg, png = photo("chelsea.jpg"), photo("chelsea.png")
    not_image = "not an image"
    return [
        BadImage("empty body", b"", 400, "empty body"),
        BadImage("plain text", b"hello, this is not a picture", 415, not_image),
        BadImage("html", b"<!doctype html><html><body><img src=x></body></html>", 415, not_image),
        BadImage("json", b'{"image": "chelsea.jpg"}', 415, not_image),
        BadImage("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>', 415,
                 not_image),
        BadImage("pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF", 415, not_image),
        BadImage("heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), 415, not_image),
        BadImage("zip", _zip(), 415, not_image),
        BadImage("random bytes", np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), 415,
                 not_image),
        BadImage("null bytes", bytes(2048), 415, not_image),
        BadImage("jpeg signature only", jpeg[:4], 415, not_image),
        BadImage("truncated jpeg", jpeg[: len(jpeg) // 3], 415, not_image),
        BadImage("jpeg with a zeroed header", _damaged(jpeg, 20, 400), 415, not_image),
        BadImage("png signature only", png[:8], 415, not_image),
        BadImage("truncated png", png[: len(png) // 2], 415, not_image),
        BadImage("png with damaged pixels", _damaged(png, png.index(b"IDAT") + 104, 300), 415, not_image),
        BadImage("png header claiming 0x0", _png_with_size(0, 0), 415, not_image),
        BadImage("truncated webp", photo("coffee.webp")[:5000], 415, not_image),
        BadImage("truncated bmp", photo("rocket.bmp")[:1000], 415, not_image),
        BadImage("ico", encode(cat.resize((64, 64)), "ICO"), 415, "unsupported format: ICO"),
        BadImage("ppm", encode(cat, "PPM"), 415, "unsupported format: PPM"),
        BadImage("pcx", encode(cat, "PCX"), 415, "unsupported format: PCX"),
        BadImage("tga", encode(cat, "TGA"), 415, "unsupported format: TGA"),
        BadImage("jpeg 2000", encode(cat, "JPEG2000"), 415, "unsupported format: JPEG2000"),
        BadImage("1x1 png", encode(Image.new("RGB", (1, 1)), "PNG"), 422, "image too small: 1x1"),
        BadImage("1x1 jpeg", encode(Image.new("RGB", (1, 1)), "JPEG"), 422, "image too small: 1x1"),
        BadImage("1-pixel strip", encode(Image.new("L", (300, 1)), "PNG"), 422, "image too small: 300x1"),
        BadImage("extreme aspect ratio", encode(Image.new("RGB", (10_000, 4)), "PNG"), 422, "image too elongated"),
        BadImage("huge dimensions", _png_with_size(100_000, 100_000), 413, "image too large: 100000x100000"),
        BadImage("decompression bomb", encode(Image.new("1", (20_000, 20_000)), "PNG"), 413,
                 "image too large: 20000x20000"),
    ]


def valid_but_unusual() -> dict[str, bytes]:
    """Formats a client may send that look odd but are images we classify (answered 200)."""
    cat = Image.open(DATA / "chelsea.png").convert("RGB")
    grey16 = np.asarray(cat.convert("L"), dtype=np.uint16) * 257
    return {
        "16-bit png": encode(Image.fromarray(grey16), "PNG"),
        "palette png": encode(cat.convert("P"), "PNG"),
        "animated gif": encode(cat, "GIF", save_all=True, append_images=[cat.rotate(90)], duration=50),
        "multi-page tiff": encode(cat, "TIFF", save_all=True, append_images=[cat.rotate(90)]),
        "cmyk jpeg": photo("coffee_cmyk.jpg"),
        "rgba png": photo("astronaut_rgba.png"),
        "progressive jpeg": photo("chelsea_progressive.jpg"),
        "webp": photo("coffee.webp"),
        "bmp": photo("rocket.bmp"),
    }
