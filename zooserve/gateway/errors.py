"""Every error a client can get, typed once: the one error table.

Each class declares its HTTP ``status``, its gRPC status code (``grpc_code``, a ``grpc.StatusCode`` name),
whether its answers tell the client when to retry (``retryable``: ``Retry-After``, on every transport, of
the error's own ``retry_after_s`` where it knows better, else ``ZOO_RETRY_AFTER_S`` seconds) and the authentication scheme REST answers ask for
(``challenge``: ``WWW-Authenticate``). A subclass inherits all four, so a new error needs no
change in any transport. ``code`` is a stable machine-readable string (the same codes the TorchServe
handler uses for image errors), ``message`` a sentence for people, ``variant`` the experiment's variant
that failed (set by the experiments layer; None outside experiments).
"""

from __future__ import annotations


class GatewayError(Exception):
    status = 500
    grpc_code = "INTERNAL"
    retryable = False
    challenge: str | None = None
    default_code = "internal"

    def __init__(self, message: str, code: str | None = None, retry_after_s: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.retry_after_s = retry_after_s  # None: the gateway's ZOO_RETRY_AFTER_S
        self.variant: str | None = None


class NotFound(GatewayError):
    """Unknown model (the message names close matches) or unknown version."""

    status, grpc_code = 404, "NOT_FOUND"
    default_code = "unknown_model"

    def __init__(self, message: str, code: str | None = None, close_matches: list[str] | None = None):
        super().__init__(message, code)
        self.close_matches = close_matches or []


class BadRequest(GatewayError):
    """Malformed request: empty body, bad topk, a multipart form without its image field."""

    status, grpc_code = 400, "INVALID_ARGUMENT"
    default_code = "bad_request"


class Unprocessable(GatewayError):
    """Well-formed but unusable: a parameter of the wrong type, an image too small to classify."""

    status, grpc_code = 422, "INVALID_ARGUMENT"
    default_code = "invalid_request"


class UnsupportedMedia(GatewayError):
    """Not an image, or an image format we do not read."""

    status, grpc_code = 415, "INVALID_ARGUMENT"
    default_code = "not_an_image"


class TooLarge(GatewayError):
    """Body over the byte cap, or image over the pixel cap."""

    status, grpc_code = 413, "INVALID_ARGUMENT"
    default_code = "body_too_large"


class Unauthorized(GatewayError):
    """No bearer token, or the wrong one, on a route that needs one (experiment control, feedback)."""

    status, grpc_code, challenge = 401, "UNAUTHENTICATED", "Bearer"
    default_code = "unauthorized"


class Forbidden(GatewayError):
    """A route that is off: experiment control while no operator token is configured."""

    status, grpc_code = 403, "PERMISSION_DENIED"
    default_code = "forbidden"


class Conflict(GatewayError):
    """The request contradicts what is stored: feedback for a request that already has it."""

    status, grpc_code = 409, "ALREADY_EXISTS"
    default_code = "duplicate_feedback"


class Overloaded(GatewayError):
    """Too many requests in flight for the model, or no memory to load it beside the ones in use."""

    status, grpc_code, retryable = 429, "RESOURCE_EXHAUSTED", True
    default_code = "overloaded"


class BackendError(GatewayError):
    """TorchServe answered something we cannot use (a worker crash, an unexpected status)."""

    status = 502
    default_code = "backend_error"


class BackendUnavailable(GatewayError):
    """TorchServe unreachable, refusing our token, without a worker for the model, or unable to load it."""

    status, grpc_code, retryable = 503, "UNAVAILABLE", True
    default_code = "backend_unavailable"


class ModelLoading(BackendUnavailable):
    """The model is being loaded (a cold start): retry after the seconds its load is expected to take still."""

    default_code = "model_loading"


class OverMemoryBudget(BackendUnavailable):
    """The model needs more memory than its backend's whole budget: waiting will not help."""

    retryable = False
    default_code = "over_memory_budget"


class DeadlineExceeded(GatewayError):
    """No answer within the deadline."""

    status, grpc_code = 504, "DEADLINE_EXCEEDED"
    default_code = "deadline_exceeded"


# the statuses the TorchServe handler answers a bad request with (zooserve/handler/header.py, service.py)
_BY_STATUS: dict[int, type[GatewayError]] = {400: BadRequest, 413: TooLarge, 415: UnsupportedMedia, 422: Unprocessable}


def from_status(status: int, code: str, message: str) -> GatewayError:
    """The typed error for a status the handler answered with (anything else is a BackendError)."""
    return _BY_STATUS.get(status, BackendError)(message, code)


def check_size(size: int, limit: int, complete: bool = True) -> None:
    """TooLarge for a body of ``size`` bytes over ``limit``: its whole (or declared) size, or the size read so far
    (not ``complete``)."""
    if size > limit:
        raise TooLarge(f"body too large: {size} bytes > limit of {limit} bytes" if complete
                       else f"body too large: more than the limit of {limit} bytes")
