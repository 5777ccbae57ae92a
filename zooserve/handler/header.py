"""The image header, read with PIL alone (no pixels decoded): the format and the size, so that anything
that is not a usable image, or a decompression bomb, is refused before memory is spent on it.

Torch-free on purpose: the gateway checks every image with this same function before it reaches TorchServe
(same errors, same messages) and imports no torch; the handler's ``decode`` starts with it too.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

# formats we accept, by PIL's name for them
SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF"})
DEFAULT_MAX_PIXELS = 40_000_000  # 40 megapixels; the largest photograph a phone takes is ~200M, bombs more
MIN_SIDE = 2  # a 1-pixel-wide image carries no picture to classify
# resizing the shorter side to the input size scales the longer one with it: a 20000x2 strip would become
# a gigabyte; no photograph is this elongated
MAX_ASPECT_RATIO = 50

Image.MAX_IMAGE_PIXELS = None  # our own cap below applies; PIL's would only warn under 2x its limit


class ImageError(ValueError):
    """An input that cannot be classified. ``status`` is the HTTP status the caller should see."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int
    mode: str


def read_header(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageHeader:
    """Identify the image and check its size without decoding its pixels."""
    if not data:
        raise ImageError(400, "empty_body", "empty body: send the image bytes")
    try:
        with Image.open(io.BytesIO(data)) as image:
            header = ImageHeader(image.format or "unknown", image.width, image.height, image.mode)
    except UnidentifiedImageError:
        raise ImageError(415, "not_an_image", "not an image: the body is not in any image format we read") from None
    except Exception:  # PIL raises many types for corrupt headers
        raise ImageError(415, "not_an_image", "not an image: the image header is corrupt") from None
    if header.format not in SUPPORTED_FORMATS:
        supported = ", ".join(sorted(SUPPORTED_FORMATS - {"MPO"}))
        raise ImageError(415, "unsupported_format", f"unsupported format: {header.format} (supported: {supported})")
    if header.width * header.height > max_pixels:
        raise ImageError(
            413,
            "image_too_large",
            f"image too large: {header.width}x{header.height} > limit of {max_pixels} pixels",
        )
    if min(header.width, header.height) < MIN_SIDE:
        raise ImageError(
            422, "image_too_small", f"image too small: {header.width}x{header.height} (each side needs {MIN_SIDE}+)"
        )
    if max(header.width, header.height) > MAX_ASPECT_RATIO * min(header.width, header.height):
        raise ImageError(
            422, "image_too_elongated",
            f"image too elongated: {header.width}x{header.height} (at most {MAX_ASPECT_RATIO}:1)",
        )
    return header
