"""The experiments' Prometheus metrics, in the registry they are given (the gateway's own: GET /metrics renders
it), so that several gateways in one process (the tests) each count their own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# an experiment request is a prediction: the gateway's latency buckets, up to 30 s
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ExperimentMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "zoo_experiment_requests", "Experiment requests by variant and status code",
            ["experiment", "variant", "code"], registry=registry,
        )
        self.duration = Histogram(
            "zoo_experiment_request_duration_seconds", "Latency of experiment requests by variant",
            ["experiment", "variant"], buckets=DURATION_BUCKETS, registry=registry,
        )
        self.shadow_agreement = Counter(
            "zoo_experiment_shadow_agreement", "Shadow answers by whether their top-1 agrees with the primary",
            ["experiment", "model", "agrees"], registry=registry,
        )
        self.guardrail_trips = Counter(
            "zoo_experiment_guardrail_trips", "Variants stopped by a guardrail",
            ["experiment", "variant", "guardrail"], registry=registry,
        )
        self.variant_weight = Gauge(
            "zoo_experiment_variant_weight", "Current traffic weight of a variant", ["experiment", "variant"],
            registry=registry,
        )
