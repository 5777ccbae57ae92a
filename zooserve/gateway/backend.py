"""The TorchServe client: predictions over pooled keep-alive HTTP (or gRPC), models over the management API.

Predictions go through ``inference_http`` (an asyncio protocol per connection and httptools' C parser),
the management API and pings through aiohttp: the prediction is the call on every request's path, and
aiohttp's request machinery cost ~85 us more per round trip than the protocol does (measured on a local
server; docs/gateway.md). On a 2-core machine the gateway's CPU is taken from the model's workers.

Every call takes a timeout (what is left of the request's deadline) and turns every way TorchServe can
fail into a typed gateway error. With token authorization on, the keys come from the key file TorchServe
writes; when TorchServe refuses a key (it rotated them, or restarted) the file is read again and the call
retried once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from zooserve.torchserve import TorchServeKeys

from .errors import BackendError, BackendUnavailable, DeadlineExceeded, GatewayError, NotFound, from_status
from .inference_http import InferenceConnections
from .settings import BackendSettings

log = logging.getLogger(__name__)
REFUSED_KEY = "InvalidKeyException"  # TorchServe answers a refused token with 400 and this type


class ModelNotRegistered(Exception):
    """The backend does not have the model (never loaded, or TorchServe restarted): load it and retry."""


# what TorchServe (0.12) says when the worker running a batch died (every request of the batch gets it; the
# status is 500, or 413 when the worker was SIGKILLed, which TorchServe takes for the kernel's OOM killer)
WORKER_DIED = "Worker died."
# ...and when the model has no worker to queue the request for (being scaled, or its queue is full): 503
NO_WORKER = "has no worker to serve inference request"


class WorkerLost(Exception):
    """TorchServe lost the worker that was running the request, or has none for the model right now.

    TorchServe restarts dead workers by itself and queues requests until one is up, and a prediction has no
    side effect, so the core may send the request once more (``error`` is what the client gets otherwise)."""

    def __init__(self, reason: str, error: GatewayError):
        super().__init__(error.message)
        self.reason = reason  # "worker_died" or "no_worker": the label of the retry metric
        self.error = error


def worker_lost(backend: str, model: str, text: str) -> WorkerLost | None:
    """The WorkerLost that TorchServe's error text (HTTP body or gRPC details) describes, if it describes one."""
    if WORKER_DIED in text:
        return WorkerLost("worker_died", BackendError(f"backend {backend!r} lost the worker serving {model!r}"))
    if NO_WORKER in text:
        return WorkerLost("no_worker", BackendUnavailable(f"backend {backend!r} has no worker for {model!r} now",
                                                          code="model_unavailable"))
    return None


class KeyRefused(Exception):
    """TorchServe refused the token we sent."""


class KeyRing:
    """TorchServe's tokens, read from its key file when first needed and again when one is refused."""

    def __init__(self, key_dir: Path | None):
        self.key_dir = key_dir
        self._keys: TorchServeKeys | None = None

    def headers(self, kind: str) -> dict[str, str]:
        if self.key_dir is None:
            return {}
        if self._keys is None:
            self._keys = TorchServeKeys.read(self.key_dir)
        if self._keys is None:  # TorchServe not started yet: it has not written the file
            return {}
        return {"Authorization": f"Bearer {getattr(self._keys, kind)}"}

    def reload(self) -> None:
        self._keys = None


@dataclass(frozen=True)
class Answer:
    """A backend's HTTP answer, read whole (the connection goes back to the pool at once)."""

    status_code: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return orjson.loads(self.body)  # a ValueError when it is not JSON (NaN included)


class TorchServeBackend:
    """One TorchServe backend, by name: its pooled connections, its keys, its management API."""

    def __init__(self, name: str, settings: BackendSettings, protocol: str = "http"):
        self.name = name
        self.settings = settings
        self.keys = KeyRing(settings.key_dir)
        self.inference = InferenceConnections(settings.inference_url, settings.max_connections)
        self._http_session: aiohttp.ClientSession | None = None  # made on first use, inside the event loop
        self.grpc = None
        if protocol == "grpc":
            from .backend_grpc import GrpcInference  # here, as it imports this module's exceptions

            self.grpc = GrpcInference(self)

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http_session is None:
            connector = aiohttp.TCPConnector(limit=self.settings.max_connections, keepalive_timeout=60)
            # timeouts are given per call, from the request's deadline; no proxy from the environment
            self._http_session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=False,
                                                       timeout=aiohttp.ClientTimeout(total=None))
        return self._http_session

    async def aclose(self) -> None:
        self.inference.close()
        if self._http_session is not None:
            await self._http_session.close()
        if self.grpc is not None:
            await self.grpc.aclose()

    # --- inference ---

    async def predict(self, model: str, version: str | None, image: bytes, topk: int | None,
                      timeout: float) -> dict[str, Any]:
        """The handler's answer for one image; a typed error for a per-request error or a failure."""
        if self.grpc is not None:
            return await self._call(lambda: self.grpc.predict(model, version, image, topk, timeout), timeout)
        path = f"/predictions/{model}" + (f"/{version}" if version else "")
        headers = {"Content-Type": "application/octet-stream"}
        if topk is not None:
            headers["X-Topk"] = str(topk)  # TorchServe drops query parameters of predictions
        response = await self._call(lambda: self._post_prediction(path, headers, image), timeout)
        if response.status_code == 200:
            return _json(response, self.name)
        raise self._prediction_error(model, version, response)

    async def _post_prediction(self, path: str, headers: dict[str, str], image: bytes) -> Answer:
        # the keys on every try: a retry must see the reloaded ones
        answer = Answer(*await self.inference.post(path, headers | self.keys.headers("inference"), image))
        _raise_if_key_refused(answer)
        return answer

    async def ping(self, timeout: float) -> bool:
        """True when TorchServe's inference API answers /ping as healthy."""
        try:
            if self.grpc is not None:
                return await self._call(lambda: self.grpc.ping(timeout), timeout)
            response = await self._http("inference", "GET", self.settings.inference_url + "/ping", timeout)
            return response.status_code == 200
        except GatewayError:
            return False

    def _prediction_error(self, model: str, version: str | None, response: Answer) -> Exception:
        body = _json_or_none(response)
        handler_error = body.get("error") if isinstance(body, dict) else None
        if isinstance(handler_error, dict):  # the handler's own per-request answer: status and message are ours
            return from_status(response.status_code, handler_error.get("code", "backend_error"),
                               handler_error.get("message", ""))
        kind = body.get("type") if isinstance(body, dict) else None
        if kind == "ModelNotFoundException":
            return ModelNotRegistered(model)
        if kind == "ModelVersionNotFoundException":
            return NotFound(f"model {model!r} has no version {version!r}", code="unknown_version")
        lost = worker_lost(self.name, model, str(body.get("message", "")) if isinstance(body, dict) else "")
        if lost is not None:
            return lost
        log.warning("backend %s answered %s for %s: %s", self.name, response.status_code, model, response.text[:500])
        if response.status_code == 503:
            return BackendUnavailable(f"backend {self.name!r} cannot take requests for {model!r} now")
        return BackendError(f"backend {self.name!r} failed on {model!r} (status {response.status_code})")

    # --- management: never exposed, only the gateway calls it ---

    async def registered_models(self, timeout: float) -> list[str]:
        url = self.settings.management_url + "/models?limit=10000"
        response = await self._http("management", "GET", url, timeout)
        if response.status_code != 200:
            raise BackendError(f"backend {self.name!r} could not list its models (status {response.status_code})")
        return [entry["modelName"] for entry in _json(response, self.name).get("models", [])]

    async def register(self, model: str, timeout: float) -> None:
        """Registers ``<model>.mar`` from the backend's store and waits for its workers to be up."""
        url = f"{self.settings.management_url}/models"
        # workers as the archive's model-config.yaml says; synchronous: answer once they are up
        params = {"url": f"{model}.mar", "synchronous": "true"}
        response = await self._http("management", "POST", url, timeout, params=params)
        if response.status_code in (200, 201, 409):  # 409: registered meanwhile, by another gateway
            return
        message = (_json_or_none(response) or {}).get("message", response.text[:200])
        log.error("backend %s could not load %s: %s %s", self.name, model, response.status_code, message)
        if response.status_code == 404:
            raise BackendUnavailable(f"backend {self.name!r} has no archive for {model!r}", code="model_unavailable")
        raise BackendUnavailable(f"backend {self.name!r} could not load {model!r}", code="model_unavailable")

    async def unregister(self, model: str, timeout: float) -> None:
        url = f"{self.settings.management_url}/models/{model}"
        response = await self._http("management", "DELETE", url, timeout)
        if response.status_code not in (200, 404):  # 404: already gone
            raise BackendError(f"backend {self.name!r} could not unload {model!r} (status {response.status_code})")

    # --- the one place every call goes through: deadline, keys, connection failures ---

    async def _http(self, kind: str, method: str, url: str, timeout: float,
                    headers: dict[str, str] | None = None, **kwargs) -> Answer:
        async def send() -> Answer:
            auth = self.keys.headers(kind)  # read on every try: a retry must see the reloaded keys
            async with self.http.request(method, url, headers=(headers or {}) | auth, **kwargs) as response:
                answer = Answer(response.status, await response.read())
            _raise_if_key_refused(answer)
            return answer

        return await self._call(send, timeout)

    async def _call(self, send: Callable[[], Awaitable[Any]], timeout: float) -> Any:
        """Runs ``send`` within ``timeout`` seconds; once more with fresh keys if the token is refused."""
        try:
            async with asyncio.timeout(timeout):
                try:
                    return await send()
                except KeyRefused:
                    self.keys.reload()
                    return await send()
        except KeyRefused:
            log.error("backend %s refuses the keys in %s", self.name, self.keys.key_dir)
            raise BackendUnavailable(f"backend {self.name!r} refuses the gateway's token") from None
        except TimeoutError:
            raise DeadlineExceeded(f"no answer from backend {self.name!r} within the deadline") from None
        except (aiohttp.ClientError, OSError) as error:
            log.warning("backend %s unreachable: %r", self.name, error)
            raise BackendUnavailable(f"backend {self.name!r} is unreachable") from None


def _raise_if_key_refused(answer: Answer) -> None:
    if answer.status_code in (400, 401, 403) and REFUSED_KEY in answer.text:
        raise KeyRefused()


def _json_or_none(response: Answer) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _json(response: Answer, backend: str) -> dict[str, Any]:
    body = _json_or_none(response)
    if not isinstance(body, dict):
        raise BackendError(f"backend {backend!r} answered something that is not JSON")
    return body

