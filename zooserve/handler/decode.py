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

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.io import ImageReadMode, decode_image, decode_jpeg
from torchvision.transforms.v2.functional import to_dtype

from .header import DEFAULT_MAX_PIXELS, ImageError, ImageHeader, read_header

__all__ = ["DEFAULT_MAX_PIXELS", "ImageError", "ImageHeader", "decode", "read_header"]

# formats torchvision.io decodes for us (MPO is a JPEG with extra frames); not PNG, see above
TORCHVISION_FORMATS = frozenset({"JPEG", "MPO", "WEBP"})


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
