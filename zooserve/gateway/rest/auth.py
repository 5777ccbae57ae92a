"""Bearer tokens for the routes that steer experiments (and, if configured, for feedback).

A token lives in a file (a mounted Kubernetes or compose secret), named by a ``ZOO_*_TOKEN_FILE`` setting; the
file is read again when it changes, so a rotated secret takes effect without a restart. The presented token
is compared in constant time (hmac.compare_digest): how long a refusal takes says nothing about the token.
Refusals are errors of the one table (Unauthorized, Forbidden), answered like every other.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..errors import Forbidden, Unauthorized

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False, description="the token of the file named by the route's setting")


class TokenFile:
    def __init__(self, path: Path):
        self.path = path
        self._stamp: tuple | None = None
        self._token = b""
        self.read()  # a missing or empty file stops the gateway at start-up, not at the first request

    def read(self) -> bytes:
        try:
            stat = self.path.stat()
        except OSError as error:
            if self._stamp is None:
                raise
            log.warning("token file %s unreadable (%s): keeping the token read before", self.path, error)
            return self._token
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp != self._stamp:
            token = self.path.read_bytes().strip()
            if not token:
                raise ValueError(f"token file {self.path} is empty")
            self._token, self._stamp = token, stamp
        return self._token

    def matches(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self.read())


def bearer(path: Path | None, what: str, setting: str, open_without: bool) -> Callable[..., Awaitable[None]]:
    """A route dependency: 401 without the right token; with no token file, the route is open
    (``open_without``) or refused (403)."""
    token = TokenFile(path) if path is not None else None

    async def check(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
        if token is None:
            if open_without:
                return
            raise Forbidden(f"{what} is disabled: set {setting} to a file holding its bearer token")
        if credentials is None:
            raise Unauthorized(f"{what} needs a bearer token (Authorization: Bearer ...)")
        if not token.matches(credentials.credentials):
            raise Unauthorized(f"wrong bearer token for {what}")

    return check
