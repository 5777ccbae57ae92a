"""What TorchServe's failures mean, decoded once for both transports (HTTP bodies and gRPC details carry the
same texts), and the exceptions a backend raises to its own retry policy (``backend.py``), never to a client.
"""

from __future__ import annotations

from typing import Any

from ..errors import BackendError, BackendUnavailable, GatewayError, NotFound, from_status

REFUSED_KEY = "InvalidKeyException"  # TorchServe refuses a token with this type (HTTP 400, or gRPC details)
# what TorchServe (0.12) says when the worker running a batch died (every request of the batch gets it; the
# status is 500, or 413 when the worker was SIGKILLed, which TorchServe takes for the kernel's OOM killer)
WORKER_DIED = "Worker died."
# ...and when the model has no worker to queue the request for (being scaled, or its queue is full): 503
NO_WORKER = "has no worker to serve inference request"


class ModelNotRegistered(Exception):
    """The backend does not have the model (never loaded, or TorchServe restarted): load it and retry."""


class KeyRefused(Exception):
    """TorchServe refused the token we sent: read the key file again and retry."""


class WorkerLost(Exception):
    """TorchServe lost the worker that was running the request, or has none for the model right now.

    TorchServe restarts dead workers by itself and queues requests until one is up, and a prediction has no
    side effect, so the request may be sent once more (``error`` is what the client gets otherwise)."""

    def __init__(self, reason: str, error: GatewayError):
        super().__init__(error.message)
        self.reason = reason  # "worker_died" or "no_worker": the label of the retry metric
        self.error = error


def key_refused(status: int, text: str) -> bool:
    """Whether an answer (its HTTP status, or gRPC's code as one, and its text) is TorchServe refusing our
    token."""
    return status in (401, 403) or REFUSED_KEY in text


def torchserve_error(backend: str, model: str, version: str | None, text: str) -> Exception | None:
    """The failure TorchServe's error text describes, where it describes one we act on."""
    if WORKER_DIED in text:
        return WorkerLost("worker_died", BackendError(f"backend {backend!r} lost the worker serving {model!r}"))
    if NO_WORKER in text:
        return WorkerLost("no_worker", BackendUnavailable(f"backend {backend!r} has no worker for {model!r} now",
                                                          code="model_unavailable"))
    if "ModelVersionNotFoundException" in text:
        return NotFound(f"model {model!r} has no version {version!r}", code="unknown_version")
    if "ModelNotFoundException" in text:
        return ModelNotRegistered(model)
    return None


def handler_error(body: Any, status: int | None = None) -> GatewayError | None:
    """The handler's own answer to a bad request (``{"error": {"code", "message", "status"}}``), typed; its
    HTTP status, or over gRPC (which drops the status the handler set) the one the handler put in the body."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    return from_status(status or int(error.get("status", 502)), error.get("code", "backend_error"),
                       error.get("message", ""))
