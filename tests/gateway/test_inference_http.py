"""The prediction client's connections (zooserve/gateway/backend/connections.py) against a real socket server that
answers as told: kept alive, closed while idle, chunked, garbage, silent."""

from __future__ import annotations

import asyncio

import httptools
import pytest

from zooserve.gateway.backend.connections import ConnectionLost, HttpConnections

POST = "POST"

OK_BODY = b'{"predictions": []}'


class Server:
    """An HTTP/1.1 server on 127.0.0.1 whose every answer comes from ``answer(request_number)``."""

    def __init__(self, answer):
        self.answer = answer
        self.connections = self.open = self.most_open = self.requests = 0
        self.seen: list[tuple[bytes, dict[bytes, bytes], bytes]] = []

    async def __aenter__(self) -> str:
        self.server = await asyncio.get_running_loop().create_server(lambda: _Peer(self), "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc) -> None:
        self.server.close()


class _Peer(asyncio.Protocol):
    def __init__(self, server: Server):
        self.server, self.parser = server, httptools.HttpRequestParser(self)

    def connection_made(self, transport) -> None:
        self.transport, self.headers, self.body = transport, {}, b""
        self.server.connections += 1
        self.server.open += 1
        self.server.most_open = max(self.server.most_open, self.server.open)

    def connection_lost(self, exc) -> None:
        self.server.open -= 1

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.server.requests += 1
        self.server.seen.append((self.url, self.headers, self.body))
        self.headers, self.body = {}, b""
        asyncio.get_running_loop().create_task(self._answer(self.server.requests))

    async def _answer(self, number: int) -> None:
        reply = await self.server.answer(number)
        if reply == "close":
            self.transport.close()
        elif isinstance(reply, tuple):  # ("then close", answer)
            self.transport.write(reply[1])
            self.transport.close()
        elif reply is not None:
            self.transport.write(reply)


def ok(body: bytes = OK_BODY, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 \r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def always_ok(number: int) -> bytes:
    return ok()


def test_sends_the_request_and_keeps_one_connection_alive():
    async def scenario():
        server = Server(always_ok)
        async with server as url:
            pool = HttpConnections(url, limit=4)
            for _ in range(3):
                answer = await pool.request(POST, "/predictions/resnet18/1.0", {"X-Topk": "3"}, b"\xff\xd8image")
                assert answer == (200, OK_BODY)
            pool.close()
        return server

    server = asyncio.run(scenario())
    assert server.connections == 1 and server.requests == 3
    path, headers, body = server.seen[0]
    assert path == b"/predictions/resnet18/1.0" and body == b"\xff\xd8image"
    assert headers[b"x-topk"] == b"3" and headers[b"content-length"] == b"7" and headers[b"host"].startswith(b"127.0.0.1:")


def test_a_connection_closed_while_idle_is_not_reused():
    async def scenario():
        async def answer_then_hang_up(number: int):
            return ("then close", ok())  # no "connection: close": the client learns it only from the socket

        server = Server(answer_then_hang_up)
        async with server as url:
            pool = HttpConnections(url, limit=4)
            assert (await pool.request(POST, "/predictions/m", {}, b"x"))[0] == 200
            await asyncio.sleep(0.05)  # the close reaches the client while the connection idles
            assert (await pool.request(POST, "/predictions/m", {}, b"x"))[0] == 200
            pool.close()
        return server

    server = asyncio.run(scenario())
    assert server.connections == 2 and server.requests == 2


def test_a_reused_connection_that_fails_unanswered_is_retried_once_on_a_fresh_one():
    async def scenario():
        async def hang_up_on_the_second(number: int):
            return "close" if number == 2 else ok()

        server = Server(hang_up_on_the_second)
        async with server as url:
            pool = HttpConnections(url, limit=4)
            assert (await pool.request(POST, "/predictions/m", {}, b"x"))[0] == 200
            # request 2 lost, request 3 answered
            assert (await pool.request(POST, "/predictions/m", {}, b"x"))[0] == 200
            pool.close()
        return server

    server = asyncio.run(scenario())
    assert server.requests == 3 and server.connections == 2


def test_a_fresh_connection_that_fails_is_the_callers_error():
    async def scenario():
        async def hang_up(number: int):
            return "close"

        async with Server(hang_up) as url:
            pool = HttpConnections(url, limit=4)
            with pytest.raises(ConnectionLost):
                await pool.request(POST, "/predictions/m", {}, b"x")

    asyncio.run(scenario())


def test_chunked_answer_and_connection_close():
    async def scenario():
        async def chunked(number: int) -> bytes:
            return (b"HTTP/1.1 200 \r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                    b"5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n")

        server = Server(chunked)
        async with server as url:
            pool = HttpConnections(url, limit=4)
            assert await pool.request(POST, "/predictions/m", {}, b"x") == (200, b'{"a": 1}')
            assert await pool.request(POST, "/predictions/m", {}, b"x") == (200, b'{"a": 1}')
            assert not pool._idle, "a connection the server closes is not kept"
        return server

    server = asyncio.run(scenario())
    assert server.connections == 2


def test_an_answer_that_is_not_http_is_a_lost_connection():
    async def scenario():
        async def garbage(number: int) -> bytes:
            return b"SSH-2.0-OpenSSH_9.6\r\n\r\n"

        async with Server(garbage) as url:
            pool = HttpConnections(url, limit=4)
            with pytest.raises(ConnectionError, match="not an HTTP answer"):
                await pool.request(POST, "/predictions/m", {}, b"x")
            assert not pool._idle

    asyncio.run(scenario())


def test_a_request_cancelled_midway_closes_its_connection():
    async def scenario():
        async def silent_first(number: int):
            if number == 1:
                return None  # never answers
            return ok()

        server = Server(silent_first)
        async with server as url:
            pool = HttpConnections(url, limit=4)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await pool.request(POST, "/predictions/m", {}, b"x")
            await asyncio.sleep(0.05)
            assert server.open == 0, "the connection with an unanswered request is closed, not pooled"
            assert (await pool.request(POST, "/predictions/m", {}, b"x"))[0] == 200
            pool.close()
        return server

    server = asyncio.run(scenario())
    assert server.connections == 2


def test_no_server_is_an_os_error():
    async def scenario():
        async with Server(always_ok) as url:
            pass  # the port is free again
        with pytest.raises(OSError):
            await HttpConnections(url, limit=4).request("POST", "/predictions/m", {}, b"x")

    asyncio.run(scenario())


def test_at_most_limit_connections_at_once():
    async def scenario():
        async def slow(number: int) -> bytes:
            await asyncio.sleep(0.05)
            return ok()

        server = Server(slow)
        async with server as url:
            pool = HttpConnections(url, limit=2)
            answers = await asyncio.gather(*(pool.request(POST, "/predictions/m", {}, b"x") for _ in range(6)))
            pool.close()
        return server, answers

    server, answers = asyncio.run(scenario())
    assert all(status == 200 for status, _ in answers)
    assert server.most_open == 2 and server.connections == 2
