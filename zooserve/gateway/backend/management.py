"""TorchServe's management API, as the gateway uses it: what is registered, register, unregister.

Never exposed and never proxied: the gateway is its only client (loopback or cluster-internal, with the
management key).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from ..errors import BackendError, BackendUnavailable
from ..settings import BackendSettings
from .calls import KeyRing, call
from .connections import Answer, HttpConnections
from .errors import KeyRefused, key_refused

log = logging.getLogger(__name__)


class Management:
    def __init__(self, name: str, settings: BackendSettings, keys: KeyRing):
        self.name, self.keys = name, keys
        self.connections = HttpConnections(settings.management_url, settings.max_connections)

    async def registered_models(self, timeout: float) -> list[str]:
        answer = await self._call("GET", "/models", timeout, params={"limit": "10000"})
        body = answer.json_or_none()
        if answer.status_code != 200 or not isinstance(body, dict):
            raise BackendError(f"backend {self.name!r} could not list its models (status {answer.status_code})")
        return [entry["modelName"] for entry in body.get("models", [])]

    async def register(self, model: str, timeout: float) -> None:
        """Registers ``<model>.mar`` from the backend's store and waits for its workers to be up."""
        # workers as the archive's model-config.yaml says; synchronous: answer once they are up
        params = {"url": f"{model}.mar", "synchronous": "true"}
        answer = await self._call("POST", "/models", timeout, params=params)
        if answer.status_code in (200, 201, 409):  # 409: registered meanwhile, by another gateway
            return
        body = answer.json_or_none()
        message = body.get("message") if isinstance(body, dict) else answer.text[:200]
        log.error("backend %s could not load %s: %s %s", self.name, model, answer.status_code, message)
        if answer.status_code == 404:
            raise BackendUnavailable(f"backend {self.name!r} has no archive for {model!r}", code="model_unavailable")
        raise BackendUnavailable(f"backend {self.name!r} could not load {model!r}", code="model_unavailable")

    async def unregister(self, model: str, timeout: float) -> None:
        answer = await self._call("DELETE", f"/models/{quote(model, safe='')}", timeout)
        if answer.status_code not in (200, 404):  # 404: already gone
            raise BackendError(f"backend {self.name!r} could not unload {model!r} (status {answer.status_code})")

    def close(self) -> None:
        self.connections.close()

    async def _call(self, method: str, path: str, timeout: float, params: dict[str, str] | None = None) -> Answer:
        async def send() -> Answer:
            answer = await self.connections.request(method, path, self.keys.headers("management"), params=params)
            if answer.status_code >= 400 and key_refused(answer.status_code, answer.text):
                raise KeyRefused()
            return answer

        return await call(self.name, self.keys, send, timeout)
