"""The one place every call to a TorchServe backend goes through: its timeout, its token, its failures.

With token authorization on, the keys come from the key file TorchServe writes; when TorchServe refuses a
key (it rotated them, or restarted) the file is read again and the call sent once more. A timeout and a
connection that fails become the typed errors a client gets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from zooserve.torchserve import TorchServeKeys

from ..errors import BackendUnavailable, DeadlineExceeded
from .errors import KeyRefused

log = logging.getLogger(__name__)
T = TypeVar("T")


class KeyRing:
    """TorchServe's tokens, read from its key file when first needed and again when one is refused."""

    def __init__(self, key_dir: Path | None):
        self.key_dir = key_dir
        self._keys: TorchServeKeys | None = None

    def headers(self, kind: str) -> dict[str, str]:
        """The Authorization header for the ``inference`` or ``management`` API (none with authorization off)."""
        if self.key_dir is None:
            return {}
        if self._keys is None:
            self._keys = TorchServeKeys.read(self.key_dir)
        if self._keys is None:  # TorchServe not started yet: it has not written the file
            return {}
        return {"Authorization": f"Bearer {getattr(self._keys, kind)}"}

    def reload(self) -> None:
        self._keys = None


async def call(backend: str, keys: KeyRing, send: Callable[[], Awaitable[T]], timeout: float) -> T:
    """Runs ``send`` within ``timeout`` seconds; once more with fresh keys if it raises KeyRefused. ``send``
    reads the keys itself on every try."""
    try:
        async with asyncio.timeout(timeout):
            try:
                return await send()
            except KeyRefused:
                keys.reload()
                return await send()
    except KeyRefused:
        log.error("backend %s refuses the keys in %s", backend, keys.key_dir)
        raise BackendUnavailable(f"backend {backend!r} refuses the gateway's token") from None
    except TimeoutError:
        raise DeadlineExceeded(f"no answer from backend {backend!r} within the deadline") from None
    except OSError as error:  # ConnectionError included: refused, reset, closed before the answer
        log.warning("backend %s unreachable: %r", backend, error)
        raise BackendUnavailable(f"backend {backend!r} is unreachable") from None
