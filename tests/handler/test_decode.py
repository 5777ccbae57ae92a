"""Decoding every supported format from real photographs, and refusing what is not a usable image."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from tests.conftest import encode, photo
from zooserve.handler.decode import ImageError, decode, read_header

PHOTOS = {
    "chelsea.jpg": (300, 451),
    "chelsea_progressive.jpg": (300, 451),
    "coffee_cmyk.jpg": (400, 600),
    "chelsea.png": (300, 451),
    "astronaut_rgba.png": (512, 512),
    "camera.png": (512, 512),
    "coffee.webp": (400, 600),
    "rocket.bmp": (427, 640),
}


@pytest.mark.parametrize("name, size", PHOTOS.items())
def test_photographs_decode_to_rgb_uint8(name, size):
    image = decode(photo(name))
    assert image.dtype == torch.uint8 and image.shape == (3, *size)
    assert image.float().std() > 10, "a real photograph has contrast"


def test_cmyk_jpeg_matches_the_rgb_original():
    rgb = decode(photo("coffee.png")).float()
    cmyk = decode(photo("coffee_cmyk.jpg")).float()
    assert (rgb - cmyk).abs().mean() < 12  # JPEG loss, but the same picture in the same colours


def test_grayscale_becomes_three_equal_channels():
    image = decode(photo("camera.png"))
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


@pytest.mark.parametrize("name", ["animated.gif", "multipage.tiff", "grey16.png", "palette.png"])
def test_derived_formats_decode(derived_images, name):
    image = decode(derived_images[name])
    assert image.shape == (3, 300, 451) and image.dtype == torch.uint8
    assert 40 < image.float().mean() < 220, "16-bit and palette images keep their brightness"


def test_first_frame_and_first_page_are_used(derived_images):
    first = decode(encode(Image.open(io.BytesIO(derived_images["animated.gif"])).convert("RGB"), "PNG"))
    assert (decode(derived_images["animated.gif"]).float() - first.float()).abs().mean() < 1
    tiff = decode(derived_images["multipage.tiff"])
    assert torch.equal(tiff, decode(photo("chelsea.png")))


def test_exif_orientation_is_applied(derived_images):
    assert decode(derived_images["rotated.jpg"]).shape == (3, 451, 300)


@pytest.mark.parametrize(
    "data, status, message",
    [
        (b"", 400, "empty body"),
        (b"hello world, this is text", 415, "not an image"),
        (b"<html><body>hi</body></html>", 415, "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 415, "not an image"),
        (encode(Image.new("RGB", (64, 64)), "ICO"), 415, "unsupported format: ICO"),
        (encode(Image.new("RGB", (1, 1)), "PNG"), 422, "image too small: 1x1"),
    ],
)
def test_bad_inputs_get_a_status_and_a_message(data, status, message):
    with pytest.raises(ImageError) as caught:
        decode(data)
    assert caught.value.status == status and caught.value.message.startswith(message)


def test_truncated_jpeg_is_refused_not_crashed():
    data = photo("chelsea.jpg")
    with pytest.raises(ImageError, match="not an image") as caught:
        decode(data[: len(data) // 3])
    assert caught.value.status == 415


def test_pixel_cap_is_checked_before_decoding():
    bomb = encode(Image.new("1", (20_000, 20_000)), "PNG")  # a few KB that would decode to 400 MP
    assert len(bomb) < 200_000
    with pytest.raises(ImageError, match=r"image too large: 20000x20000 > limit of 40000000 pixels") as caught:
        decode(bomb)
    assert caught.value.status == 413
    assert read_header(photo("chelsea.jpg"), max_pixels=135_300).width == 451
    with pytest.raises(ImageError, match="image too large"):
        read_header(photo("chelsea.jpg"), max_pixels=135_299)


def _damaged(data: bytes, seed: int) -> bytes:
    import random

    rng = random.Random(seed)
    damaged = bytearray(data)
    start = rng.randrange(100, len(data) - 400)
    for i in range(start, start + rng.randrange(10, 300)):
        damaged[i] = rng.randrange(256)
    return bytes(damaged)


@pytest.mark.parametrize("name", ["chelsea.png", "chelsea.jpg", "chelsea_progressive.jpg", "coffee.webp"])
def test_damaged_images_never_crash_the_process(name, tmp_path):
    """Damaged files are decoded in a child process: an ImageError is fine, a crash (a signal) is not."""
    import subprocess
    import sys

    for seed in range(8):
        (tmp_path / f"{seed}.bin").write_bytes(_damaged(photo(name), seed))
    code = (
        "import sys, pathlib\nfrom zooserve.handler.decode import decode, ImageError\n"
        "for path in sorted(pathlib.Path(sys.argv[1]).glob('*.bin')):\n"
        "    print(path.name, flush=True)\n"
        "    try:\n        decode(path.read_bytes())\n    except ImageError:\n        pass\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    last = result.stdout.split()[-1:] or ["-"]
    assert result.returncode == 0, f"{name}: exit {result.returncode} while decoding {last[0]}: {result.stderr[-300:]}"


def test_extreme_aspect_ratio_is_refused_before_resizing():
    with pytest.raises(ImageError, match=r"^image too elongated: 10000x4 \(at most 50:1\)$") as caught:
        decode(encode(Image.new("RGB", (10_000, 4)), "PNG"))
    assert caught.value.status == 422
    assert decode(encode(Image.new("RGB", (500, 10)), "PNG")).shape == (3, 10, 500)
