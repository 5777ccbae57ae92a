"""The gateway's one HTTP client: pooled keep-alive HTTP/1.1 connections to one TorchServe address.

A prediction is the call on every request's path, so the client is kept to what it needs: an asyncio
protocol per connection, httptools (the C parser uvicorn uses) for the answer, one ``writelines`` per
request. aiohttp, which the gateway used before, spent ~97 us per round trip against a local server where
this spends ~13 us (same loop, same payload: a 34 KiB photograph out, a prediction back); on a 2-core
machine, after a worker has held the CPU, the difference is several times larger (docs/gateway.md, *What
the gateway costs per request*). The management API and pings, off the request path, use it too: one
client instead of two.

A connection carries one request at a time and goes back to the pool only after a complete answer it may
keep alive. A request cancelled or failed midway closes its connection: what is left on it is unknown.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

import httptools
import orjson


class Answer(NamedTuple):
    """A backend's HTTP answer, read whole (the connection goes back to the pool at once)."""

    status_code: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return orjson.loads(self.body)  # a ValueError when it is not JSON (NaN included)

    def json_or_none(self) -> Any:
        try:
            return self.json()
        except ValueError:
            return None


class ConnectionLost(ConnectionError):
    """The connection closed (or answered something that is not HTTP) before the answer was complete."""


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future | None = None
        self._body: list[bytes] = []
        self.closed = False

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._answer is None:  # nothing was asked: a server that talks unasked is not one to keep
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(ConnectionLost(f"not an HTTP answer: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionLost("the connection closed before the answer was complete"))

    # --- httptools callbacks ---

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer, self._answer = self._answer, None
        body, self._body = b"".join(self._body), []
        if not self._parser.should_keep_alive():
            self.close()
        if answer is not None and not answer.done():
            answer.set_result((self._parser.get_status_code(), body))

    # --- used by the pool ---

    async def exchange(self, request: tuple[bytes, bytes]) -> tuple[int, bytes]:
        self._answer = self._loop.create_future()
        self._transport.writelines(request)
        return await self._answer

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _fail(self, error: Exception) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(error)
        self.close()


class HttpConnections:
    """The keep-alive connections to one TorchServe address (inference or management), at most ``limit`` open
    at once."""

    def __init__(self, url: str, limit: int):
        parts = urlsplit(url)
        self.host, self.secure = parts.hostname or "127.0.0.1", parts.scheme == "https"
        self.port = parts.port or (443 if self.secure else 80)
        self._host_header = parts.netloc.encode("idna")
        self._prefix = parts.path.rstrip("/")  # an address behind a proxy may have one
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(limit)  # made here, used only inside the loop (Python 3.10+)

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"",
                      params: dict[str, str] | None = None) -> Answer:
        """TorchServe's answer; ConnectionError (an OSError) when there is none.

        A kept-alive connection may have been closed by TorchServe while idle (it restarted), which shows
        only once it is used: a request that fails so on a reused connection is sent once more on a fresh
        one. It had not been answered, and TorchServe's calls may be repeated: a prediction has no side
        effect, and registering or unregistering a model twice is answered as done (409, 404)."""
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        request = (self._head(method, target, headers, len(body)), body)
        async with self._slots:
            connection = self._reusable()
            if connection is not None:
                try:
                    return await self._exchange(connection, request)
                except ConnectionLost:
                    pass
            return await self._exchange(await self._connect(), request)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _head(self, method: str, target: str, headers: dict[str, str], length: int) -> bytes:
        lines = [f"{method} {target} HTTP/1.1\r\n".encode("ascii"), b"Host: ", self._host_header,
                 b"\r\nContent-Length: ", str(length).encode("ascii"), b"\r\n"]
        for name, value in headers.items():  # our own names and values: tokens, digits, media types
            lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        lines.append(b"\r\n")
        return b"".join(lines)

    def _reusable(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()  # the most recently used first: the likeliest to be alive
            if not connection.closed:
                return connection
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if self.secure else None
        _, connection = await loop.create_connection(lambda: _Connection(loop), self.host, self.port, ssl=context)
        return connection

    async def _exchange(self, connection: _Connection, request: tuple[bytes, bytes]) -> Answer:
        try:
            answer = Answer(*await connection.exchange(request))
        except BaseException:  # failed or cancelled (the deadline) midway: the connection's state is unknown
            connection.close()
            raise
        if not connection.closed:
            self._idle.append(connection)
        return answer
