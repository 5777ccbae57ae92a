"""One gateway process, put together: the core, the experiments layer around its predict, and REST (uvicorn)
and gRPC serving them side by side on one event loop.

Both transports share one core (one pool of backend connections, one set of metrics, the experiments'
included). Stopping refuses new requests at once and gives in-flight ones ``shutdown_grace_s`` to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn

from .core import Gateway
from .experiments.layer import Experiments
from .experiments.metrics import ExperimentMetrics
from .grpc.service import GrpcServer
from .rest.app import create_app
from .rest.protocol import OneWriteHttpToolsProtocol
from .settings import Settings

log = logging.getLogger(__name__)


class _Uvicorn(uvicorn.Server):
    def capture_signals(self):
        # the process's signal handlers stop both transports (__main__), not uvicorn alone
        return contextlib.nullcontext()


def rest_config(app, settings: Settings, http: type = OneWriteHttpToolsProtocol) -> uvicorn.Config:
    """uvicorn as the gateway runs it (``http``: its protocol, which loadtests/rest_paths.py varies)."""
    return uvicorn.Config(
        app, host=settings.host, port=settings.rest_port, lifespan="off", http=http,
        timeout_graceful_shutdown=settings.shutdown_grace_s, log_config=None, access_log=False,
        # no client address is used (our access lines do not write it), so X-Forwarded-* need no middleware on
        # every request; and no "server: uvicorn" header telling the world what to probe
        proxy_headers=False, server_header=False,
    )


class GatewayServer:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.gateway = Gateway(settings)
        self.experiments = Experiments(self.gateway, settings, ExperimentMetrics(self.gateway.metrics.registry))
        self.rest = _Uvicorn(rest_config(create_app(self.gateway, self.experiments), settings))
        self.grpc = GrpcServer(self.gateway, self.experiments)
        self._rest_task: asyncio.Task | None = None

    @property
    def rest_port(self) -> int:
        """The bound port (the configured one, or the one the system chose for port 0)."""
        return self.rest.servers[0].sockets[0].getsockname()[1]

    @property
    def grpc_port(self) -> int:
        return self.grpc.port

    async def start(self) -> None:
        await self.gateway.start()  # a first ping of each backend, then one now and then
        await self.experiments.start()  # the experiment record store and its background loops
        await self.grpc.start()
        self._rest_task = asyncio.create_task(self.rest.serve())
        while not self.rest.started:
            if self._rest_task.done():  # uvicorn exits (SystemExit) when it cannot bind
                await self.grpc.stop(0)
                await self.experiments.aclose()
                await self.gateway.aclose()
                raise RuntimeError(f"REST could not listen on {self.settings.host}:{self.settings.rest_port}")
            await asyncio.sleep(0.02)
        log.info("zooserve gateway ready: REST http://%s:%d (docs at /docs), gRPC %s:%d", self.settings.host,
                 self.rest_port, self.settings.host, self.grpc_port)

    async def stop(self) -> None:
        grace = self.settings.shutdown_grace_s
        self.rest.should_exit = True  # uvicorn closes its sockets, then waits for in-flight requests
        await asyncio.gather(self.grpc.stop(grace), self._rest_task, return_exceptions=True)
        await self.experiments.aclose()  # shadows finish, records are flushed
        await self.gateway.aclose()
