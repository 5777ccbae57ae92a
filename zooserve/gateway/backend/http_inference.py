"""Predictions and pings over TorchServe's HTTP inference API (the default transport: measured faster and
cheaper in CPU than gRPC, docs/gateway.md), through the gateway's own pooled connections."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import BackendError, BackendUnavailable, GatewayError
from ..settings import BackendSettings
from .calls import KeyRing, call
from .connections import Answer, HttpConnections
from .errors import KeyRefused, handler_error, key_refused, torchserve_error

log = logging.getLogger(__name__)


class HttpInference:
    def __init__(self, name: str, settings: BackendSettings, keys: KeyRing):
        self.name, self.keys = name, keys
        self.connections = HttpConnections(settings.inference_url, settings.max_connections)

    async def predict(self, model: str, version: str | None, image: bytes, topk: int | None,
                      timeout: float) -> dict[str, Any]:
        """The handler's answer for one image; a typed error (or one for the retry policy) otherwise."""
        path = f"/predictions/{model}" + (f"/{version}" if version else "")
        headers = {"Content-Type": "application/octet-stream"}
        if topk is not None:
            headers["X-Topk"] = str(topk)  # TorchServe drops query parameters of predictions
        answer = await call(self.name, self.keys, lambda: self._send("POST", path, headers, image), timeout)
        body = answer.json_or_none()
        if answer.status_code == 200:
            if not isinstance(body, dict):
                raise BackendError(f"backend {self.name!r} answered something that is not JSON")
            return body
        raise self._failure(model, version, answer, body)

    async def ping(self, timeout: float) -> bool:
        """True when TorchServe's inference API answers /ping as healthy."""
        try:
            answer = await call(self.name, self.keys, lambda: self._send("GET", "/ping", {}), timeout)
        except GatewayError:
            return False
        return answer.status_code == 200

    async def aclose(self) -> None:
        self.connections.close()

    async def _send(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Answer:
        # the keys on every try: a retry must see the reloaded ones
        answer = await self.connections.request(method, path, headers | self.keys.headers("inference"), body)
        if answer.status_code != 200 and key_refused(answer.status_code, answer.text):
            raise KeyRefused()
        return answer

    def _failure(self, model: str, version: str | None, answer: Answer, body: Any) -> Exception:
        error = handler_error(body, answer.status_code)  # the handler's own answer: its status and message
        if error is not None:
            return error
        described = body if isinstance(body, dict) else {}
        text = f"{described.get('type', '')} {described.get('message', '')}"
        decoded = torchserve_error(self.name, model, version, text)
        if decoded is not None:
            return decoded
        log.warning("backend %s answered %s for %s: %s", self.name, answer.status_code, model, answer.text[:500])
        if answer.status_code == 503:
            return BackendUnavailable(f"backend {self.name!r} cannot take requests for {model!r} now")
        return BackendError(f"backend {self.name!r} failed on {model!r} (status {answer.status_code})")
