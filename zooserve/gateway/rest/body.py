"""Request bodies under a byte cap, and the image of a POST /predict request: the raw body, or the multipart
form field ``image``.

The cap applies before anything is buffered: a declared Content-Length over it is refused at once, and a
body without one (chunked) is read only up to the cap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from ..errors import BadRequest, UnsupportedMedia, check_size

IMAGE_FIELD = "image"
RAW_TYPES = ("application/octet-stream", "")  # no Content-Type at all: take the bytes as they come


async def read_capped(request: Request, limit: int) -> bytes:
    """The whole body; TooLarge as soon as its declared or its read size is over ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit():  # isdigit() alone takes '²', which int() refuses
        check_size(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        check_size(size, limit, complete=False)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_image(request: Request, limit: int) -> bytes:
    """The image bytes of a prediction whose body may hold up to ``limit`` bytes."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (media_type in RAW_TYPES or media_type.startswith("image/") or media_type == "multipart/form-data"):
        raise UnsupportedMedia(
            f"unsupported content type {media_type!r}: send the image as the body (image/* or "
            f"application/octet-stream) or as the multipart form field {IMAGE_FIELD!r}",
            code="unsupported_content_type",
        )
    body = await read_capped(request, limit)
    if media_type == "multipart/form-data":
        return await _form_image(request, body)
    return body


class _InMemoryParser(MultiPartParser):
    spool_max_size = 64 * 1024 * 1024  # the body is already in memory and capped: keep the part there too


async def _form_image(request: Request, body: bytes) -> bytes:
    async def stream() -> AsyncIterator[bytes]:
        yield body

    parser = _InMemoryParser(request.headers, stream(), max_files=4, max_fields=16)
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise BadRequest(f"malformed multipart body: {error.message}", code="bad_multipart") from None
    try:
        upload = form.get(IMAGE_FIELD)
        if not isinstance(upload, UploadFile):
            raise BadRequest(f"multipart form without a file field {IMAGE_FIELD!r}", code="missing_image")
        return await upload.read()
    finally:
        await form.close()
