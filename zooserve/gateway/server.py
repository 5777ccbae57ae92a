"""One gateway process: the core, with REST (uvicorn) and gRPC serving it side by side on one event loop.

Both transports share one ``Gateway`` (one pool of backend connections, one set of metrics). Stopping
refuses new requests at once and gives in-flight ones ``shutdown_grace_s`` to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn

from .core import Gateway
from .grpc.service import GrpcServer
from .rest.app import create_app
from .rest.protocol import OneWriteHttpToolsProtocol
from .settings import Settings

log = logging.getLogger(__name__)


class _Uvicorn(uvicorn.Server):
    def capture_signals(self):
        # the process's signal handlers stop both transports (__main__), not uvicorn alone
        return contextlib.nullcontext()


class GatewayServer:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.gateway = Gateway(settings)
        config = uvicorn.Config(
            create_app(self.gateway), host=settings.host, port=settings.rest_port, lifespan="off",
            http=OneWriteHttpToolsProtocol, timeout_graceful_shutdown=settings.shutdown_grace_s, log_config=None, access_log=False,
            # no client address is used (no access log), so X-Forwarded-* need no middleware on every request;
            # and no "server: uvicorn" header telling the world what to probe
            proxy_headers=False, server_header=False,
        )
        self.rest = _Uvicorn(config)
        self.grpc = GrpcServer(self.gateway)
        self._rest_task: asyncio.Task | None = None

    @property
    def rest_port(self) -> int:
        """The bound port (the configured one, or the one the system chose for port 0)."""
        return self.rest.servers[0].sockets[0].getsockname()[1]

    @property
    def grpc_port(self) -> int:
        return self.grpc.port

    async def start(self) -> None:
        await self.gateway.start()  # the experiment record store and its background loops
        await self.grpc.start()
        self._rest_task = asyncio.create_task(self.rest.serve())
        while not self.rest.started:
            if self._rest_task.done():  # uvicorn exits (SystemExit) when it cannot bind
                await self.grpc.stop(0)
                raise RuntimeError(f"REST could not listen on {self.settings.host}:{self.settings.rest_port}")
            await asyncio.sleep(0.02)
        log.info("zooserve gateway: REST on http://%s:%d, gRPC on %s:%d", self.settings.host, self.rest_port,
                 self.settings.host, self.grpc_port)

    async def stop(self) -> None:
        grace = self.settings.shutdown_grace_s
        self.rest.should_exit = True  # uvicorn closes its sockets, then waits for in-flight requests
        await asyncio.gather(self.grpc.stop(grace), self._rest_task, return_exceptions=True)
        await self.gateway.aclose()
