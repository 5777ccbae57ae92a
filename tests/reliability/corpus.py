"""A corpus of bad images: what a careless or hostile client sends, with the answer each must get.

Images are made from the real photographs in tests/data (or from nothing, where that is the point). Each
bad image has the HTTP status, the error code and the start of the message every protocol must answer it
with (docs/gateway.md, Errors); tests/gateway/test_bad_inputs.py sends each over REST, gRPC, and the Open
Inference Protocol's REST and gRPC bindings. The requests that are bad for reasons other than their image
are in corpus_requests.py.
"""

from __future__ import annotations

import base64
import gzip
import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

from tests.conftest import DATA, encode, photo

NOT_AN_IMAGE = "not an image"
CORRUPT_HEADER = ": the image header is corrupt"


@dataclass(frozen=True)
class BadImage:
    name: str
    body: bytes
    status: int
    code: str
    message: str  # the start of the error message


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims a size (its pixel data is a token)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
            + _png_chunk(b"IEND", b""))


def _jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The photograph with its frame header (SOF0 or SOF2) claiming another size."""
    start = next(jpeg.index(marker) for marker in (b"\xff\xc0", b"\xff\xc2") if marker in jpeg)
    # marker (2), segment length (2), precision (1), then height and width
    return jpeg[:start + 5] + struct.pack(">HH", height, width) + jpeg[start + 9:]


def _gif_with_screen(gif: bytes, width: int, height: int) -> bytes:
    """A GIF whose logical screen (bytes 6-9, after the signature) claims another size."""
    return gif[:6] + struct.pack("<HH", width, height) + gif[10:]


def _tiff_with_tag(tiff: bytes, tag: int, value: int) -> bytes:
    """A little-endian TIFF (as PIL writes them) with one SHORT or LONG tag of its first IFD changed."""
    assert tiff[:4] == b"II*\x00"
    (ifd,) = struct.unpack_from("<I", tiff, 4)
    (count,) = struct.unpack_from("<H", tiff, ifd)
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        found, kind = struct.unpack_from("<HH", tiff, entry)
        if found == tag:
            packed = struct.pack("<H", value) + b"\x00\x00" if kind == 3 else struct.pack("<I", value)
            return tiff[:entry + 8] + packed + tiff[entry + 12:]
    raise ValueError(f"no tag {tag} in the TIFF")


def _bmp_with_bit_count(bmp: bytes, bits: int) -> bytes:
    return bmp[:28] + struct.pack("<H", bits) + bmp[30:]  # BITMAPINFOHEADER: bits per pixel at byte 28


def _png_with_bad_header_checksum(png: bytes) -> bytes:
    return png[:29] + bytes([png[29] ^ 0xFF]) + png[30:]  # the CRC of IHDR is bytes 29-32


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("chelsea.jpg", photo("chelsea.jpg"))
    return buffer.getvalue()


def _damaged(data: bytes, start: int, length: int) -> bytes:
    return data[:start] + bytes(length) + data[start + length:]


def _cat() -> Image.Image:
    return Image.open(DATA / "chelsea.png").convert("RGB")


def _not_images() -> list[BadImage]:
    """Bodies in no image format, or in one we refuse to read (415)."""
    cat, jpeg = _cat(), photo("chelsea.jpg")
    small = cat.resize((64, 43))

    def unsupported(name: str, body: bytes, fmt: str) -> BadImage:
        return BadImage(name, body, 415, "unsupported_format", f"unsupported format: {fmt}")

    def not_image(name: str, body: bytes) -> BadImage:
        return BadImage(name, body, 415, "not_an_image", NOT_AN_IMAGE)

    return [
        BadImage("empty body", b"", 400, "empty_body", "empty body"),
        not_image("plain text", b"hello, this is not a picture"),
        not_image("utf-16 text", "hello, this is not a picture".encode("utf-16")),
        not_image("html", b"<!doctype html><html><body><img src=x></body></html>"),
        not_image("json", b'{"image": "chelsea.jpg"}'),
        not_image("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'),
        not_image("pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF"),
        not_image("heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)),
        not_image("zip", _zip()),
        not_image("gzip of a jpeg", gzip.compress(jpeg)),
        not_image("base64 of a jpeg", base64.b64encode(jpeg)),  # the client forgot to decode it
        not_image("data url", b"data:image/jpeg;base64," + base64.b64encode(jpeg[:600])),
        not_image("random bytes", np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()),
        not_image("null bytes", bytes(2048)),
        unsupported("avif", encode(small, "AVIF"), "AVIF"),
        # PIL reads these; we never do (EPS would be rendered by Ghostscript, a classic attack surface)
        unsupported("eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n%%EndComments\nshowpage\n", "EPS"),
        unsupported("psd", b"8BPS\x00\x01" + bytes(6) + struct.pack(">HIIHH", 3, 10, 10, 8, 3) + bytes(40), "PSD"),
        unsupported("xbm", encode(small.convert("1"), "XBM"), "XBM"),
        unsupported("ico", encode(cat.resize((64, 64)), "ICO"), "ICO"),
        unsupported("ppm", encode(cat, "PPM"), "PPM"),
        unsupported("pcx", encode(cat, "PCX"), "PCX"),
        unsupported("tga", encode(cat, "TGA"), "TGA"),
        unsupported("jpeg 2000", encode(cat, "JPEG2000"), "JPEG2000"),
    ]


def _damaged_images() -> list[BadImage]:
    """Real images cut short or with damaged headers or data (415: refused by the header check, or by the
    decoder in TorchServe with code corrupt_image)."""
    jpeg, png = photo("chelsea.jpg"), photo("chelsea.png")
    cat = _cat()
    gif = encode(cat, "GIF", save_all=True, append_images=[cat.rotate(90)], duration=50)
    tiff = encode(cat, "TIFF")

    def header(name: str, body: bytes, why: str = "") -> BadImage:
        return BadImage(name, body, 415, "not_an_image", f"{NOT_AN_IMAGE}{why}")

    def corrupt(name: str, body: bytes, fmt: str) -> BadImage:
        return BadImage(name, body, 415, "corrupt_image", f"{NOT_AN_IMAGE}: the {fmt} data is corrupt or truncated")

    return [
        header("jpeg signature only", jpeg[:4]),
        header("jpeg with a zeroed header", _damaged(jpeg, 20, 400)),
        corrupt("truncated jpeg", jpeg[: len(jpeg) // 3], "JPEG"),
        header("png signature only", png[:8]),
        header("png with a bad header checksum", _png_with_bad_header_checksum(png)),
        corrupt("truncated png", png[: len(png) // 2], "PNG"),
        corrupt("png with damaged pixels", _damaged(png, png.index(b"IDAT") + 104, 300), "PNG"),
        header("png header claiming 0x0", _png_with_size(0, 0)),
        header("gif signature only", b"GIF89a"),
        corrupt("truncated gif", gif[: len(gif) // 3], "GIF"),
        corrupt("truncated tiff", tiff[: len(tiff) // 2], "TIFF"),
        corrupt("tiff claiming zstd compression", _tiff_with_tag(tiff, 259, 50_000), "TIFF"),
        header("truncated webp", photo("coffee.webp")[:5000]),
        header("webp with a damaged header", b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(20), CORRUPT_HEADER),
        corrupt("truncated bmp", photo("rocket.bmp")[:1000], "BMP"),
        header("bmp with a corrupt header", _bmp_with_bit_count(photo("rocket.bmp"), 7), CORRUPT_HEADER),
    ]


def _bad_sizes() -> list[BadImage]:
    """Images too small, too elongated or too large (bombs refused before any pixel is decoded)."""
    cat, jpeg = _cat(), photo("chelsea.jpg")
    tiny = Image.new("RGB", (1, 1))

    def too_large(name: str, body: bytes, size: str) -> BadImage:
        return BadImage(name, body, 413, "image_too_large", f"image too large: {size}")

    return [
        BadImage("1x1 png", encode(tiny, "PNG"), 422, "image_too_small", "image too small: 1x1"),
        BadImage("1x1 jpeg", encode(tiny, "JPEG"), 422, "image_too_small", "image too small: 1x1"),
        BadImage("1x1 webp", encode(tiny, "WEBP"), 422, "image_too_small", "image too small: 1x1"),
        BadImage("1-pixel strip", encode(Image.new("L", (300, 1)), "PNG"), 422, "image_too_small",
                 "image too small: 300x1"),
        BadImage("extreme aspect ratio", encode(Image.new("RGB", (10_000, 4)), "PNG"), 422, "image_too_elongated",
                 "image too elongated: 10000x4"),
        BadImage("extreme aspect ratio, tall", encode(Image.new("RGB", (4, 10_000)), "PNG"), 422,
                 "image_too_elongated", "image too elongated: 4x10000"),
        too_large("huge dimensions", _png_with_size(100_000, 100_000), "100000x100000"),
        too_large("decompression bomb", encode(Image.new("1", (20_000, 20_000)), "PNG"), "20000x20000"),
        too_large("jpeg header claiming 60000x60000", _jpeg_with_size(jpeg, 60_000, 60_000), "60000x60000"),
        too_large("gif header claiming 30000x30000", _gif_with_screen(encode(cat.resize((64, 43)), "GIF"),
                                                                      30_000, 30_000), "30000x30000"),
        too_large("tiff header claiming 90000x90000",
                  _tiff_with_tag(_tiff_with_tag(encode(cat.resize((64, 43)), "TIFF"), 256, 90_000), 257, 90_000),
                  "90000x90000"),
    ]


@cache
def bad_images() -> tuple[BadImage, ...]:
    return (*_not_images(), *_damaged_images(), *_bad_sizes())


@cache
def valid_but_unusual() -> dict[str, bytes]:
    """Images a client may send that look odd but are images we classify (answered 200)."""
    cat = _cat()
    grey16 = np.asarray(cat.convert("L"), dtype=np.uint16) * 257
    return {
        "16-bit png": encode(Image.fromarray(grey16), "PNG"),
        "palette png": encode(cat.convert("P"), "PNG"),
        "1-bit png": encode(cat.convert("1"), "PNG"),
        "grey+alpha png": encode(cat.convert("LA"), "PNG"),
        "animated png": encode(cat, "PNG", save_all=True, append_images=[cat.rotate(90)]),
        "animated gif": encode(cat, "GIF", save_all=True, append_images=[cat.rotate(90)], duration=50),
        "multi-page tiff": encode(cat, "TIFF", save_all=True, append_images=[cat.rotate(90)]),
        "cmyk tiff": encode(cat.convert("CMYK"), "TIFF"),
        "cmyk jpeg": photo("coffee_cmyk.jpg"),
        "jpeg with trailing bytes": photo("chelsea.jpg") + b"trailing" * 64,
        "rgba png": photo("astronaut_rgba.png"),
        "progressive jpeg": photo("chelsea_progressive.jpg"),
        "webp": photo("coffee.webp"),
        "bmp": photo("rocket.bmp"),
    }
