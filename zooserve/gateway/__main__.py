"""``python -m zooserve.gateway``: REST on 127.0.0.1:8000 and gRPC on 127.0.0.1:50051 (ZOO_* to change).

SIGINT or SIGTERM stops both: new requests are refused, in-flight ones finish (ZOO_SHUTDOWN_GRACE_S).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable

import uvloop

from .server import GatewayServer
from .settings import Settings


async def run(settings: Settings, on_ready: Callable[[GatewayServer], None] | None = None) -> None:
    """Serves until SIGINT or SIGTERM; ``on_ready`` is called once both transports listen."""
    server = GatewayServer(settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"zooserve gateway ready: REST http://{settings.host}:{server.rest_port} (docs at /docs), "
          f"gRPC {settings.host}:{server.grpc_port}", flush=True)
    if on_ready is not None:
        on_ready(server)
    await stop.wait()
    logging.getLogger(__name__).info("stopping: letting in-flight requests finish")
    await server.stop()


def serve(settings: Settings, on_ready: Callable[[GatewayServer], None] | None = None) -> None:
    """``run`` on uvloop: libuv's event loop spends less CPU per request than asyncio's own (measured in
    docs/gateway.md), and the gateway's added latency is mostly event-loop and framework time."""
    uvloop.run(run(settings, on_ready))


def main(argv: list[str] | None = None) -> int:
    if argv:  # configured by ZOO_* only (settings.py), so that compose and k8s set it one way
        sys.exit(f"zooserve gateway takes no arguments (got {' '.join(argv)}): set ZOO_* variables instead")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(Settings())
    return 0


if __name__ == "__main__":
    sys.exit(main())
