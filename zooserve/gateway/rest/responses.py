"""The REST answers every route shares: errors from the one error table, and the internal error.

Two bodies, one mapping: the gateway's own routes answer ``{"error": {"code", "message"}}``, the Open
Inference Protocol's ``{"error": "<message>"}``; both carry the table's status, ``Retry-After`` where the
error is retryable, ``WWW-Authenticate`` where it names a challenge and ``X-Variant`` where an experiment's
variant failed.
"""

from __future__ import annotations

import logging

from fastapi.responses import JSONResponse

from ..errors import GatewayError, NotFound

log = logging.getLogger(__name__)
VARIANT_HEADER = "X-Variant"


def error_headers(error: GatewayError, retry_after_s: int) -> dict[str, str] | None:
    headers = {"Retry-After": str(error.retry_after_s or retry_after_s)} if error.retryable else {}
    if error.challenge is not None:
        headers["WWW-Authenticate"] = error.challenge
    if error.variant is not None:  # a request on an experiment: the variant that failed
        headers[VARIANT_HEADER] = error.variant
    return headers or None


def error_response(error: GatewayError, retry_after_s: int) -> JSONResponse:
    """The gateway's own routes: ``{"error": {"code", "message"[, "close_matches"]}}``."""
    body: dict = {"code": error.code, "message": error.message}
    if isinstance(error, NotFound) and error.close_matches:
        body["close_matches"] = error.close_matches
    return JSONResponse({"error": body}, status_code=error.status, headers=error_headers(error, retry_after_s))


def v2_error_response(error: GatewayError, retry_after_s: int) -> JSONResponse:
    """The Open Inference Protocol's routes: ``{"error": "<message>"}``."""
    return JSONResponse({"error": error.message}, status_code=error.status,
                        headers=error_headers(error, retry_after_s))


def plain_error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    """An error that is not a GatewayError (FastAPI's own: a route that does not exist, a bad parameter)."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def internal_error(rid: str, v2: bool = False) -> JSONResponse:
    """Anything unexpected: logged with its traceback, answered 500 without one (the request id to find it)."""
    log.exception("internal error in request %s", rid)
    message = f"internal error (request id {rid})"
    return JSONResponse({"error": message} if v2 else {"error": {"code": "internal", "message": message}},
                        status_code=500)
