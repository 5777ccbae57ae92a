"""The gateway's Prometheus metrics, named by Prometheus conventions (base units, ``_total``, ``_seconds``).

Each Gateway has its own registry (several run side by side in the tests), which the experiment metrics
(``experiments/metrics.py``) are registered in too; GET /metrics renders it followed by the process-wide
default registry (process, GC and platform collectors). The ``model`` label only ever holds catalog names
(or ``unknown``), so a client cannot grow the number of series.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # no *_created series: Prometheus does not use them, and they double the output

UNKNOWN_MODEL = "unknown"
# a prediction on CPU takes from ~10 ms (small CIFAR nets) to tens of seconds (heavy ImageNet nets)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# a registration starts a Python worker (seconds) and builds the model (up to minutes for the heavy ones)
LOAD_BUCKETS = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 900)
BODY_BUCKETS = tuple(1024 * 4**k for k in range(1, 10))  # 4 KiB .. 256 MiB


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "zoo_requests", "Prediction requests by model, route (transport) and status code.",
            ["model", "route", "code"], registry=registry,
        )
        self.request_duration = Histogram(
            "zoo_request_duration_seconds", "Time from receiving a prediction request to answering it.",
            ["model"], buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.backend_duration = Histogram(
            "zoo_backend_duration_seconds", "Time inside TorchServe prediction calls.",
            ["model"], buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.retries = Counter(
            "zoo_backend_retries", "Prediction calls sent again: the worker died mid-request (worker_died), the "
            "model had no worker (no_worker), or the backend had lost the model, which is loaded again (model_lost).",
            ["model", "reason"], registry=registry,
        )
        self.in_flight = Gauge(
            "zoo_requests_in_flight", "Prediction requests being served.", ["model"], registry=registry,
        )
        self.body_bytes = Histogram(
            "zoo_request_body_bytes", "Size of prediction request bodies (the image).",
            buckets=BODY_BUCKETS, registry=registry,
        )
        self.model_loads = Counter(
            "zoo_model_loads", "Models registered on a backend on first use, by outcome.",
            ["model", "outcome"], registry=registry,
        )
        self.model_load_duration = Histogram(
            "zoo_model_load_duration_seconds", "Time to register a model and start its workers.",
            ["model"], buckets=LOAD_BUCKETS, registry=registry,
        )
        self.model_unloads = Counter(
            "zoo_model_unloads", "Models unregistered to stay under a backend's memory budget.",
            ["model"], registry=registry,
        )
        self.models_loaded = Gauge(
            "zoo_models_loaded", "Models registered on each backend, as the gateway knows.",
            ["backend"], registry=registry,
        )
        self.memory_reserved = Gauge(
            "zoo_backend_memory_reserved_bytes", "Estimated memory of the models loaded on each backend.",
            ["backend"], registry=registry,
        )

        self._series: dict[str, ModelSeries] = {}

    def of(self, model: str) -> "ModelSeries":
        """The series of one model (a catalog name or ``unknown``), looked up once: ``labels()`` takes a lock
        and builds a key on every call, and a prediction updates four labelled series (in flight twice)."""
        series = self._series.get(model)
        if series is None:
            series = self._series[model] = ModelSeries(self, model)
        return series

    def render(self) -> bytes:
        return generate_latest(self.registry) + generate_latest(REGISTRY)


class ModelSeries:
    """One model's children of the per-prediction metrics."""

    def __init__(self, metrics: Metrics, model: str):
        self._metrics, self.model = metrics, model
        self.in_flight = metrics.in_flight.labels(model)
        self.request_duration = metrics.request_duration.labels(model)
        self.backend_duration = metrics.backend_duration.labels(model)
        self._requests: dict[tuple[str, int], Counter] = {}

    def requests(self, route: str, status: int) -> Counter:
        key = (route, status)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self._metrics.requests.labels(self.model, route, str(status))
        return child
