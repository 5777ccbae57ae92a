"""``zooserve gateway`` (or ``python -m zooserve.gateway``): REST on 127.0.0.1:8000 and gRPC on 127.0.0.1:50051
(ZOO_* to change), in front of the TorchServe backends of ZOO_BACKENDS.

SIGINT or SIGTERM stops both: new requests are refused, in-flight ones finish (ZOO_SHUTDOWN_GRACE_S).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable

import uvloop

from zooserve.snapshot import SnapshotError

from . import logs
from .server import GatewayServer
from .settings import Settings

log = logging.getLogger(__name__)


async def run(settings: Settings, on_ready: Callable[[GatewayServer], None] | None = None) -> None:
    """Serves until SIGINT or SIGTERM; ``on_ready`` is called once both transports listen."""
    server = GatewayServer(settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if on_ready is not None:
        on_ready(server)
    await stop.wait()
    log.info("stopping: letting in-flight requests finish")
    await server.stop()


def serve(settings: Settings, on_ready: Callable[[GatewayServer], None] | None = None) -> None:
    """``run`` on uvloop: libuv's event loop spends less CPU per request than asyncio's own (measured in
    docs/gateway.md), and the gateway's added latency is mostly event-loop and framework time."""
    uvloop.run(run(settings, on_ready))


def main(argv: list[str] | None = None) -> int:
    if argv:  # configured by ZOO_* only (settings.py), so that compose and k8s set it one way
        sys.exit(f"zooserve gateway takes no arguments (got {' '.join(argv)}): set ZOO_* variables instead")
    settings = Settings()
    logs.configure(settings.log_format)
    try:
        serve(settings)
    except SnapshotError as error:  # no catalog to serve: say how to make one
        sys.exit(f"zooserve gateway: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
