"""The gateway's logging: JSON lines (``ZOO_LOG_FORMAT=json``, the containers' default) or text, and one
access line per request from each transport.

An access line holds the request id, the transport, the model (a catalog or experiment name; ``unknown``
for any other: the path is the client's text and is never written), the experiment's variant where there
is one, the status (HTTP's, or the gRPC code's name) and the latency in milliseconds. Bodies, paths and
client-chosen ids are never logged (tests/security/test_logs.py).
"""

from __future__ import annotations

import logging
import sys
import time

from pythonjsonlogger.orjson import OrjsonFormatter

ACCESS = logging.getLogger("zooserve.access")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Every logger of the process (the gateway's, uvicorn's, gRPC's Python side) through one handler on
    stderr, in ``log_format`` (json or text)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(OrjsonFormatter(JSON_FIELDS, rename_fields={
            "asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def access(transport: str, request_id: str, status: int | str, started: float, model: str | None = None,
           variant: str | None = None) -> None:
    """The access line of one request (``started``: its ``time.perf_counter()``)."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    ACCESS.info("%s %s %s %s ms, request %s", transport, model or "-", status, latency_ms, request_id, extra={
        "request_id": request_id, "transport": transport, "model": model, "variant": variant, "status": status,
        "latency_ms": latency_ms})
