"""Image bytes to an RGB uint8 tensor (3, H, W), with a clear error for anything that is not a usable image.

The header is read first with PIL (lazy: no pixels decoded) to learn the format and the size, so a
decompression bomb is refused before any memory is spent on it. JPEG and WebP are decoded by
``torchvision.io``: in our measurement (docs/handler.md) it is faster than PIL and gives a tensor
without a copy. PNG is not: torchvision's PNG decoder crashes the whole process (SIGSEGV in libpng) on
damaged image data, which in TorchServe kills the worker for every request in its batch; PIL raises an
error instead (tests/handler/test_decode.py fuzzes both). Everything else PIL reads (PNG, GIF, BMP,
TIFF) goes through PIL. On a GPU worker, JPEG is decoded on the GPU by nvJPEG (``decode(..., device=)``),
which also leaves the pixels where the model runs; anything nvJPEG refuses falls back to the CPU.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.io import ImageReadMode, decode_image, decode_jpeg
from torchvision.transforms.v2.functional import to_dtype

# formats we accept, by PIL's name for them
SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF"})
# formats torchvision.io decodes for us (MPO is a JPEG with extra frames); not PNG, see above
TORCHVISION_FORMATS = frozenset({"JPEG", "MPO", "WEBP"})
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


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, device: torch.device | None = None) -> torch.Tensor:
    """RGB uint8 tensor of shape (3, H, W), EXIF orientation applied, first frame or page only; on ``device``
    when it is a CUDA device and the image a JPEG that nvJPEG decodes, else on the CPU."""
    header = read_header(data, max_pixels)
    if device is not None and device.type == "cuda" and header.format == "JPEG" and header.mode in ("RGB", "L"):
        decoded = _decode_nvjpeg(data, device)
        if decoded is not None:
            return decoded
    try:
        if header.format in TORCHVISION_FORMATS and header.mode in ("RGB", "L", "RGBA", "LA", "P"):
            return _decode_torchvision(data)
        return _decode_pil(data)
    except ImageError:
        raise
    except Exception:  # the decoders' own messages name source files: not for clients
        raise ImageError(415, "corrupt_image", f"not an image: the {header.format} data is corrupt or truncated") from None


def _decode_torchvision(data: bytes) -> torch.Tensor:
    buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision warns about truncated files it still decodes
        image = decode_image(buffer, mode=ImageReadMode.RGB, apply_exif_orientation=True)
    if image.dim() == 4:  # animated GIF: every frame; keep the first
        image = image[0]
    if image.dtype != torch.uint8:  # 16-bit PNG
        image = to_dtype(image, torch.uint8, scale=True)
    return image


def _decode_nvjpeg(data: bytes, device: torch.device) -> torch.Tensor | None:
    """The JPEG decoded on the GPU, or None where nvJPEG refuses it (the CPU decoders then say what is wrong)."""
    buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    try:
        return decode_jpeg(buffer, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True)
    except RuntimeError:
        return None


def _decode_pil(data: bytes) -> torch.Tensor:
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)  # first frame of an animation, first page of a TIFF
        image = ImageOps.exif_transpose(image)
        if image.mode.startswith("I"):
            # 16-bit grey: scale to 8 bits instead of letting convert() clip everything above 255 to white
            array = np.clip(np.asarray(image).astype(np.int64) >> 8, 0, 255).astype(np.uint8)
            image = Image.fromarray(array, mode="L")
        rgb = np.asarray(image.convert("RGB"))
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)
