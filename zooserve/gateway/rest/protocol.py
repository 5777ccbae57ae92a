"""uvicorn's httptools protocol, with each response written to the socket in one piece.

uvicorn writes a response's status line and headers, then its body, with two ``transport.write`` calls,
which uvloop sends at once: two syscalls and two TCP segments, and a client that may wake up for the head
alone and again for the body (seen with strace on a prediction: a 174-byte head, then a 523-byte body).
TorchServe answers in one segment, so the split was a cost the gateway added to every request. Here the
head waits for the body and both go out in one syscall.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport that holds back a write until the next one, and sends both with one ``writelines``.

    A response's head is held until its body is written, within the same turn of the event loop; a write
    that nothing follows (the end of a streamed body, a lone 100 Continue) goes out at the start of the next
    turn. Everything but writing and closing is the real transport's (``__getattr__``): flow control, peer
    names, ``is_closing``; ``close`` sends what is held first, as a transport does with its own buffer."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport, self._loop = transport, loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._held is None:
            self._held = data
            self._loop.call_soon(self._flush)
            return
        held, self._held = self._held, None
        self._transport.writelines((held, data))

    def writelines(self, chunks) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():  # closing: the client went away meanwhile
            self._transport.write(held)

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """``uvicorn.Config(http=OneWriteHttpToolsProtocol)``: httptools, with CoalescingTransport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))
