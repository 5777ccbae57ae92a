"""Every error a client can get, typed once. Each transport maps the types once to its own status codes.

``code`` is a stable machine-readable string (the same codes the TorchServe handler uses for image
errors), ``message`` a sentence for people. ``status`` is the HTTP status; the gRPC mapping is in
``grpc/service.py`` and keys on the class, so a new subclass needs no change there.
"""

from __future__ import annotations


class GatewayError(Exception):
    status = 500
    default_code = "internal"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class NotFound(GatewayError):
    """Unknown model (the message names close matches) or unknown version."""

    status = 404
    default_code = "unknown_model"

    def __init__(self, message: str, code: str | None = None, close_matches: list[str] | None = None):
        super().__init__(message, code)
        self.close_matches = close_matches or []


class BadRequest(GatewayError):
    """Malformed request: empty body, bad topk, a multipart form without its image field."""

    status = 400
    default_code = "bad_request"


class Unprocessable(GatewayError):
    """Well-formed but unusable: a parameter of the wrong type, an image too small to classify."""

    status = 422
    default_code = "invalid_request"


class UnsupportedMedia(GatewayError):
    """Not an image, or an image format we do not read."""

    status = 415
    default_code = "not_an_image"


class TooLarge(GatewayError):
    """Body over the byte cap, or image over the pixel cap."""

    status = 413
    default_code = "body_too_large"


class Overloaded(GatewayError):
    """Too many requests in flight for the model, or no memory to load it beside the ones in use."""

    status = 429
    default_code = "overloaded"

    def __init__(self, message: str, retry_after_s: int, code: str | None = None):
        super().__init__(message, code)
        self.retry_after_s = retry_after_s


class BackendUnavailable(GatewayError):
    """TorchServe unreachable, refusing our token, or unable to load the model."""

    status = 503
    default_code = "backend_unavailable"


class DeadlineExceeded(GatewayError):
    """No answer within the deadline."""

    status = 504
    default_code = "deadline_exceeded"


class Conflict(GatewayError):
    """The request contradicts what is stored: feedback for a request that already has it."""

    status = 409
    default_code = "duplicate_feedback"


class BackendError(GatewayError):
    """TorchServe answered something we cannot use (a worker crash, an unexpected status)."""

    status = 502
    default_code = "backend_error"


# the statuses the TorchServe handler answers a bad request with (zooserve/handler/decode.py, service.py)
_BY_STATUS: dict[int, type[GatewayError]] = {400: BadRequest, 413: TooLarge, 415: UnsupportedMedia, 422: Unprocessable}


def from_status(status: int, code: str, message: str) -> GatewayError:
    """The typed error for a status the handler answered with (anything else is a BackendError)."""
    return _BY_STATUS.get(status, BackendError)(message, code)
