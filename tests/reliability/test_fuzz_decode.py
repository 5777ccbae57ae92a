"""Property-based fuzzing of zooserve/handler/decode.py: whatever the bytes, ``decode`` gives an RGB uint8 tensor
of the header's size or raises its own ``ImageError`` with a 4xx status, and never takes the process down.

The inputs: arbitrary bytes, arbitrary bytes behind each format's signature, and real images (small copies
of the tests/data photographs in PNG, JPEG, GIF, BMP, TIFF and WebP) mutated by bit flips, byte changes,
truncations, insertions, deletions and changes to their headers' fields (PNG's IHDR with its checksum
recomputed, so the change reaches the decoder; JPEG's frame header; GIF's screen and frame descriptors;
BMP's info header; TIFF's tags). Decoding runs in a child process (this file, run as a module): a decoder
that crashes (torchvision's PNG decoder segfaults on damaged data, which is why PNG goes through PIL) is
then a failed example with its input, not a dead test run.
"""

from __future__ import annotations

import json
import select
import struct
import subprocess
import sys
import tempfile
import zlib
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
# derandomized (the same examples on every run, so CI is reproducible), no deadline (a 2-core CI machine
# is slow now and then), no example database written into the tree
FUZZ = settings(derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow],
                max_examples=300)
DECODE_TIMEOUT_S = 60
CODES = {"empty_body", "not_an_image", "unsupported_format", "corrupt_image", "image_too_small",
         "image_too_elongated", "image_too_large"}
SIGNATURES = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*",
              b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"RIFF\x00\x00\x00\x00WEBPVP8L", b"\x00\x00\x00\x0cjP  "]
INTERESTING = [0, 1, 2, 3, 7, 8, 15, 16, 127, 128, 255, 256, 4095, 32767, 32768, 65535, 65536, 2**31 - 1, 2**32 - 1]


# --- the child process: decodes length-prefixed inputs from stdin, answers one JSON line each ---

def _outcome(data: bytes) -> dict:
    from zooserve.handler.decode import ImageError, decode, read_header

    try:
        image = decode(data)
    except ImageError as error:
        return {"error": "ImageError", "status": error.status, "code": error.code, "message": error.message}
    except BaseException as error:  # what the property forbids: reported, not raised, so the run goes on
        return {"error": type(error).__qualname__, "message": str(error)[:300]}
    header = read_header(data)
    return {"dtype": str(image.dtype), "shape": list(image.shape), "size": [header.width, header.height]}


def _serve() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while size := stdin.read(4):
        data = stdin.read(struct.unpack("<I", size)[0])
        stdout.write(json.dumps(_outcome(data)).encode() + b"\n")
        stdout.flush()


class Decoder:
    """The child process, restarted after it dies (the shrinking of a crash replays it many times)."""

    def __init__(self) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.process: subprocess.Popen | None = None

    def decode(self, data: bytes) -> dict:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen([sys.executable, "-m", "tests.reliability.test_fuzz_decode"], cwd=ROOT,
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        process = self.process
        process.stdin.write(struct.pack("<I", len(data)) + data)
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], DECODE_TIMEOUT_S)
        line = process.stdout.readline() if ready else b""
        if not line:  # no answer in time (hung), or the end of its output (it died)
            if ready:
                process.wait(30)
            else:
                process.kill()
                process.wait()
            what = f"died (exit {process.returncode})" if ready else f"hung (no answer in {DECODE_TIMEOUT_S} s)"
            raise AssertionError(f"the decoder {what} on {len(data)} bytes starting {data[:24]!r}")
        return json.loads(line)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(30)
        self.stderr.close()


@pytest.fixture(scope="module")
def decoder():
    running = Decoder()
    yield running
    running.close()


def assert_decoded_or_refused(outcome: dict) -> None:
    event(outcome.get("code", outcome.get("error", "decoded")))  # the mix, in --hypothesis-show-statistics
    if "error" in outcome:
        assert outcome["error"] == "ImageError", f"decode raised {outcome}"
        assert 400 <= outcome["status"] < 500 and outcome["code"] in CODES, outcome
        assert outcome["message"] and ".py" not in outcome["message"], outcome
        return
    assert outcome["dtype"] == "torch.uint8" and len(outcome["shape"]) == 3 and outcome["shape"][0] == 3, outcome
    height, width = outcome["shape"][1:]
    assert sorted((width, height)) == sorted(outcome["size"]), outcome  # the header's size (EXIF may turn it)


# --- real images and the fields of their headers ---

@cache
def seeds() -> dict[str, bytes]:
    from PIL import Image

    from tests.conftest import DATA, encode

    cat = Image.open(DATA / "chelsea.png").convert("RGB").resize((48, 32))
    rocket = Image.open(DATA / "rocket.jpg").convert("RGB").resize((40, 30))
    return {
        "png": encode(cat, "PNG"), "png-palette": encode(rocket.convert("P"), "PNG"),
        "png-interlaced": encode(cat, "PNG", interlace=1), "jpeg": encode(cat, "JPEG"),
        "jpeg-progressive": encode(rocket, "JPEG", progressive=True), "jpeg-cmyk": encode(cat.convert("CMYK"), "JPEG"),
        "gif": encode(cat, "GIF", save_all=True, append_images=[rocket.resize((48, 32))]),
        "bmp": encode(cat, "BMP"), "bmp-palette": encode(rocket.convert("P"), "BMP"),
        "tiff": encode(cat, "TIFF"), "tiff-deflate": encode(rocket, "TIFF", compression="tiff_adobe_deflate"),
        "webp": encode(cat, "WEBP"),
    }


def header_fields(data: bytes) -> list[tuple[int, str]]:
    """(offset, struct format) of the header fields of a PNG, JPEG, GIF, BMP or TIFF as PIL writes them (none
    where earlier mutations left the structure unrecognisable)."""
    try:
        return _header_fields(data)
    except (StopIteration, ValueError, struct.error):
        return []


def _header_fields(data: bytes) -> list[tuple[int, str]]:
    if data.startswith(b"\x89PNG"):
        return [(16, ">I"), (20, ">I"), (24, "B"), (25, "B"), (26, "B"), (27, "B"), (28, "B"), (8, ">I")]
    if data.startswith(b"\xff\xd8"):
        frame = next(data.index(m) for m in (b"\xff\xc0", b"\xff\xc2") if m in data)
        scan = data.index(b"\xff\xda")
        return [(frame + 2, ">H"), (frame + 4, "B"), (frame + 5, ">H"), (frame + 7, ">H"), (frame + 9, "B"),
                (frame + 11, "B"), (frame + 12, "B"), (scan + 2, ">H"), (scan + 4, "B"), (4, ">H")]
    if data.startswith(b"GIF"):
        frame = data.index(b"\x2c", 13)
        return [(6, "<H"), (8, "<H"), (10, "B"), (frame + 5, "<H"), (frame + 7, "<H"), (frame + 9, "B"),
                (frame + 10, "B")]
    if data.startswith(b"BM"):
        return [(2, "<I"), (10, "<I"), (14, "<I"), (18, "<i"), (22, "<i"), (26, "<H"), (28, "<H"), (30, "<I"),
                (34, "<I"), (46, "<I")]
    if data.startswith(b"II*\x00"):
        (ifd,) = struct.unpack_from("<I", data, 4)
        (count,) = struct.unpack_from("<H", data, ifd)
        entries = range(ifd + 2, ifd + 2 + 12 * count, 12)
        return [(4, "<I"), (ifd, "<H")] + [(e + 2, "<H") for e in entries] + [(e + 4, "<I") for e in entries] + [
            (e + 8, "<I") for e in entries]
    return []


def set_field(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    size = struct.calcsize(fmt)
    limit = 256 ** size
    value %= limit
    if fmt[-1] in "ih" and value >= limit // 2:
        value -= limit
    changed = data[:offset] + struct.pack(fmt, value) + data[offset + size:]
    if changed.startswith(b"\x89PNG") and 16 <= offset < 29:  # keep IHDR's checksum right: reach the decoder
        changed = changed[:29] + struct.pack(">I", zlib.crc32(changed[12:29])) + changed[33:]
    return changed


@st.composite
def mutated_images(draw) -> bytes:
    data = seeds()[draw(st.sampled_from(sorted(seeds())))]
    for _ in range(draw(st.integers(1, 4))):
        data = draw(st.sampled_from([_flip, _overwrite, _truncate, _insert, _delete, _field]))(draw, data)
    return data


def _position(draw, data: bytes) -> int:
    # most damage in the first 256 bytes, where the headers are
    end = len(data) if draw(st.booleans()) else min(len(data), 256)
    return draw(st.integers(0, max(end - 1, 0)))


def _flip(draw, data: bytes) -> bytes:
    if not data:
        return data
    at = _position(draw, data)
    return data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1:]


def _overwrite(draw, data: bytes) -> bytes:
    at = _position(draw, data)
    patch = draw(st.binary(min_size=1, max_size=16))
    return data[:at] + patch + data[at + len(patch):]


def _truncate(draw, data: bytes) -> bytes:
    return data[:draw(st.integers(0, len(data)))]


def _insert(draw, data: bytes) -> bytes:
    at = _position(draw, data)
    return data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:]


def _delete(draw, data: bytes) -> bytes:
    at = _position(draw, data)
    return data[:at] + data[at + draw(st.integers(1, 64)):]


def _field(draw, data: bytes) -> bytes:
    fields = [(o, f) for o, f in header_fields(data) if o + struct.calcsize(f) <= len(data)]
    if not fields:
        return data
    offset, fmt = draw(st.sampled_from(fields))
    value = draw(st.one_of(st.sampled_from(INTERESTING), st.integers(0, 2**32 - 1)))
    return set_field(data, offset, fmt, value)


# --- the properties ---

def test_the_seeds_decode_and_have_header_fields(decoder):
    """The mutations start from real images that decode, with the header fields the mutations change."""
    for name, data in seeds().items():
        outcome = decoder.decode(data)
        assert "error" not in outcome, (name, outcome)
        assert header_fields(data) or name.startswith("webp"), name


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(decoder, data):
    assert_decoded_or_refused(decoder.decode(data))


@FUZZ
@given(st.sampled_from(SIGNATURES), st.binary(max_size=2048))
def test_arbitrary_bytes_behind_an_image_signature(decoder, signature, rest):
    assert_decoded_or_refused(decoder.decode(signature + rest))


@settings(FUZZ, max_examples=1500)  # a few ms each: the images are small
@given(mutated_images())
def test_mutated_real_images(decoder, data):
    assert_decoded_or_refused(decoder.decode(data))


if __name__ == "__main__":
    _serve()
