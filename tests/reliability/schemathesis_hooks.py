"""Hooks of the schemathesis run in test_schemathesis.py (loaded by schemathesis itself, through the
environment variable SCHEMATHESIS_HOOKS): image bodies are the real photographs of tests/data, so that
POST /predict reaches TorchServe and its 200 answers are checked against the document too (schemathesis'
own image samples are 1x1 pixels, which the gateway refuses as too small). Raw bodies are also arbitrary
bytes. Plain file reads only: this runs in schemathesis' process, without the test suite's imports.
"""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import strategies as st

DATA = Path(__file__).resolve().parents[1] / "data"
PHOTOS = {
    "image/jpeg": ["chelsea.jpg", "chelsea_progressive.jpg", "rocket.jpg", "coffee_cmyk.jpg"],
    "image/png": ["chelsea.png", "camera.png"],
    "image/webp": ["coffee.webp"],
    "image/bmp": ["rocket.bmp"],
}


def photos(names: list[str]) -> st.SearchStrategy[bytes]:
    return st.sampled_from([(DATA / name).read_bytes() for name in names])


for media_type, names in PHOTOS.items():
    schemathesis.openapi.media_type(media_type, photos(names))
schemathesis.openapi.media_type("application/octet-stream", st.one_of(
    photos([name for names in PHOTOS.values() for name in names]), st.binary(max_size=4096)))
