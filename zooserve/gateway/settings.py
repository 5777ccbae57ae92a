"""The gateway's configuration: one settings object, read from ``ZOO_*`` environment variables.

Scalars are plain variables (``ZOO_REST_PORT=8000``); the backends and the routing table are JSON
(``ZOO_BACKENDS='{"heavy": {"inference_url": "http://ts-heavy:8080", ...}}'``,
``ZOO_ROUTES='{"amoebanet_*": "heavy"}'``), or one nested field at a time with ``__``
(``ZOO_BACKENDS__LOCAL__KEY_DIR=/srv/torchserve``). docs/gateway.md lists them all.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from zooserve import snapshot

ROOT = Path(__file__).resolve().parents[2]
# where `zooserve serve` runs TorchServe, which writes its key file there
DEFAULT_TORCHSERVE_DIR = ROOT / "logs" / "torchserve"
# the catalog snapshot `zooserve store build` writes beside the archives of the default store
DEFAULT_CATALOG = ROOT / "model_store" / snapshot.FILE_NAME
MiB = 1024 * 1024
GiB = 1024 * MiB
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # TorchServe archive versions, e.g. "1.0"


class BackendSettings(BaseModel):
    """One TorchServe (or a pool of identical ones behind one address, as a Kubernetes Service)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inference_url: str = "http://127.0.0.1:8080"
    management_url: str = Field(
        default="http://127.0.0.1:8081", description="loopback or cluster-internal: never exposed, never proxied"
    )
    grpc_address: str = Field(default="127.0.0.1:7070", description="TorchServe's gRPC inference API")
    key_dir: Path | None = Field(
        default=DEFAULT_TORCHSERVE_DIR,
        description="where TorchServe writes key_file.json (its working directory); None: authorization off",
    )
    memory_budget_bytes: int = Field(
        default=14 * GiB, gt=0, description="models are unloaded, least recently used first, to stay under this"
    )
    max_connections: int = Field(default=64, gt=0, description="pooled keep-alive connections to this backend")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZOO_", env_nested_delimiter="__", extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", description="where REST and gRPC listen")
    catalog_path: Path = Field(default=DEFAULT_CATALOG, description="the catalog snapshot (zooserve/snapshot.py) "
                               "written by `zooserve store build` beside the archives")
    log_format: Literal["json", "text"] = Field(
        default="text", description="json: one JSON object a line (the containers' default), text: for people")
    rest_port: int = Field(default=8000, ge=0, le=65535)
    grpc_port: int = Field(default=50051, ge=0, le=65535)

    max_body_bytes: int = Field(default=20 * MiB, gt=0, description="largest image body accepted")
    max_pixels: int = Field(default=40_000_000, gt=0, description="largest image (width x height) accepted")
    max_in_flight_per_model: int = Field(default=32, gt=0, description="more at once are refused with 429")
    max_concurrent_rpcs: int = Field(
        default=64, gt=0, description="gRPC calls in progress at once, all methods: more are refused with "
        "RESOURCE_EXHAUSTED before their message is decoded (it arrives whole before the per-model cap sees it)")
    request_timeout_s: float = Field(default=30.0, gt=0, description="deadline of one prediction, end to end")
    load_timeout_s: float = Field(default=300.0, gt=0, description="registering a model on TorchServe")
    heavy_load_timeout_s: float = Field(default=900.0, gt=0, description="the same for models marked heavy")
    load_wait_s: float = Field(
        default=10.0, ge=0, description="how long a request waits for its model to load (a cold start) before it "
        "is answered 503 model_loading with Retry-After; never more than half of what is left of its deadline")
    retry_after_s: int = Field(default=1, ge=0, description="Retry-After sent with 429 and 503")
    shutdown_grace_s: float = Field(default=30.0, ge=0, description="time in-flight requests get on SIGTERM")

    backend_protocol: Literal["grpc", "http"] = Field(
        default="http", description="how predictions reach TorchServe: HTTP measured faster and cheaper in CPU "
        "than gRPC (docs/gateway.md)"
    )
    backends: dict[str, BackendSettings] = Field(default_factory=lambda: {"local": BackendSettings()})
    routes: dict[str, str] = Field(
        default_factory=dict, description="model name or shell pattern -> backend name; first match wins"
    )
    default_backend: str = "local"

    # A/B experiments (zooserve/gateway/experiments/, docs/gateway.md "Experiments")
    experiments_file: Path | None = Field(
        default=None, description="YAML file of experiments, reloaded when it changes; None: no experiments"
    )
    database_url: str | None = Field(
        default=None, description="PostgreSQL URL of the experiment record store; None: SQLite at records_path"
    )
    records_path: Path = Field(default=ROOT / "logs" / "experiments.sqlite3", description="the SQLite record store")
    record_flush_interval_s: float = Field(default=0.2, gt=0, description="records are written in batches this often")
    record_bucket_s: int = Field(default=60, gt=0, description="time resolution of the running totals (the "
                                 "report's chart over time); changing it leaves the buckets already written as they are")
    experiment_state_interval_s: float = Field(
        default=1.0, gt=0, description="each replica rereads the shared experiment state (weights, stops) this "
        "often: a change made through one replica reaches the others within this, plus one read")
    operator_token_file: Path | None = Field(
        default=None, description="file holding the bearer token of experiment control (stop, restore, reload); "
        "None: those routes are refused")
    feedback_token_file: Path | None = Field(
        default=None, description="file holding the bearer token POST /feedback needs; None: feedback is open")
    reports_need_token: bool = Field(
        default=False, description="GET /experiments and the reports need the operator token too")
    shadow_timeout_s: float = Field(default=10.0, gt=0, description="a shadow call is abandoned after this")
    max_shadows_in_flight: int = Field(default=16, ge=0, description="more shadow calls at once are skipped")
    guardrail_interval_s: float = Field(default=10.0, gt=0, description="guardrails are evaluated this often")
    experiments_reload_interval_s: float = Field(default=1.0, gt=0, description="the file is checked this often")

    @model_validator(mode="after")
    def _routes_name_backends(self) -> "Settings":
        unknown = sorted({self.default_backend, *self.routes.values()} - set(self.backends))
        if unknown:
            raise ValueError(f"routes name backends that are not configured: {', '.join(unknown)}")
        return self

    def backend_for(self, model: str) -> str:
        """The backend name serving ``model``: the first matching route, else the default."""
        for pattern, backend in self.routes.items():
            if fnmatch.fnmatchcase(model, pattern):
                return backend
        return self.default_backend


def valid_version(version: str) -> bool:
    return re.fullmatch(VERSION_PATTERN, version) is not None
