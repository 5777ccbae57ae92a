"""CoalescingTransport (zooserve/gateway/rest/protocol.py) on a real socket: a response's head and body reach the
socket in one call, a lone write still goes out, and closing sends what is held."""

from __future__ import annotations

import asyncio

from zooserve.gateway.rest.protocol import CoalescingTransport


class _Receiver(asyncio.Protocol):
    def __init__(self):
        self.data, self.closed = b"", asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc) -> None:
        self.closed.set_result(True)


async def _pair():
    """(a CoalescingTransport over a real TCP connection, the real transport's calls, the peer)"""
    loop = asyncio.get_running_loop()
    peer: list[_Receiver] = []
    server = await loop.create_server(lambda: peer.append(_Receiver()) or peer[-1], "127.0.0.1", 0)
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", server.sockets[0].getsockname()[1])
    calls: list[str] = []  # the real methods, counted (asyncio's writelines calls write: not counted twice)
    write, writelines = transport.write, transport.writelines

    def counted_write(data):
        if not calls or calls[-1] != "writelines...":
            calls.append("write")
        write(data)

    def counted_writelines(chunks):
        calls.append("writelines...")
        writelines(chunks)
        calls[-1] = "writelines"

    transport.write, transport.writelines = counted_write, counted_writelines
    await asyncio.sleep(0.01)
    return CoalescingTransport(transport, loop), calls, peer[0], server


def test_head_and_body_go_out_in_one_call():
    async def scenario():
        coalescing, calls, peer, server = await _pair()
        coalescing.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        assert calls == [], "the head waits for its body"
        coalescing.write(b"{}")
        assert calls == ["writelines"]
        await asyncio.sleep(0.05)
        assert peer.data == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
        coalescing.close()
        server.close()

    asyncio.run(scenario())


def test_a_lone_write_goes_out_on_the_next_turn_and_close_sends_what_is_held():
    async def scenario():
        coalescing, calls, peer, server = await _pair()
        coalescing.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        assert calls == ["write"] and peer.data == b"HTTP/1.1 100 Continue\r\n\r\n"
        coalescing.write(b"last words")
        coalescing.close()  # before the next turn: what is held is written first
        await asyncio.wait_for(peer.closed, 1)
        assert peer.data.endswith(b"last words")
        assert coalescing.is_closing(), "everything else is the real transport's"
        server.close()

    asyncio.run(scenario())
