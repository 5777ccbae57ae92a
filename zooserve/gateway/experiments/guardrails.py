"""Guardrails: limits a variant must keep against the control, judged with statistical confidence.

A breach needs more than a bad number: the whole confidence sequence of the difference (sequential.py)
must lie past the limit (for latency, a significant Mann-Whitney test and a p99 ratio over the limit), and
both sides need the experiment's minimum of requests, so an equal variant does not trip on noise. A
guardrail is looked at every few seconds for as long as the experiment runs: a confidence sequence keeps
its confidence however often it is read, where a fixed-horizon interval would not.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Experiment
from .report import VariantFigures, sequences
from .stats import latency_comparison


@dataclass(frozen=True)
class Breach:
    variant: str
    guardrail: str
    detail: str


def check(experiment: Experiment, treatment: VariantFigures, control: VariantFigures) -> Breach | None:
    """The first guardrail the treatment breaches with confidence, or None."""
    rules = experiment.guardrails
    if min(treatment.requests, control.requests) < rules.min_requests:
        return None
    return (
        _error_rate(experiment, treatment, control)
        or _latency(experiment, treatment, control)
        or _accuracy(experiment, treatment, control)
    )


def _error_rate(experiment: Experiment, treatment: VariantFigures, control: VariantFigures) -> Breach | None:
    limit = experiment.guardrails.max_error_rate_increase
    if limit is None:
        return None
    confidence = experiment.guardrails.confidence
    low = sequences(treatment, control, 1 - confidence)["error_rate"].last()["low"]
    if low > limit:
        return Breach(treatment.variant, "error_rate",
                      f"error rate {treatment.error_rate:.1%} vs {control.error_rate:.1%} for the control: the "
                      f"increase is at least {low:.1%} with {confidence:.0%} confidence (limit {limit:.1%})")
    return None


def _latency(experiment: Experiment, treatment: VariantFigures, control: VariantFigures) -> Breach | None:
    limit = experiment.guardrails.max_p99_latency_ratio
    p99_t, p99_c = treatment.latency_ms["p99"], control.latency_ms["p99"]
    if limit is None or not p99_t or not p99_c:
        return None
    result = latency_comparison(treatment.histogram, control.histogram, experiment.guardrails.confidence)
    significant = result.p_value < 1 - experiment.guardrails.confidence and result.difference > 0
    if significant and p99_t / p99_c > limit:
        return Breach(treatment.variant, "p99_latency",
                      f"p99 latency {p99_t:.0f} ms vs {p99_c:.0f} ms for the control ({p99_t / p99_c:.1f}x, limit "
                      f"{limit:.1f}x; slower with p = {result.p_value:.2g})")
    return None


def _accuracy(experiment: Experiment, treatment: VariantFigures, control: VariantFigures) -> Breach | None:
    rules = experiment.guardrails
    if rules.max_accuracy_drop is None or min(treatment.labelled, control.labelled) < rules.min_labels:
        return None
    high = sequences(treatment, control, 1 - rules.confidence)["accuracy"].last()["high"]
    if high < -rules.max_accuracy_drop:
        return Breach(treatment.variant, "accuracy",
                      f"accuracy {treatment.accuracy:.1%} vs {control.accuracy:.1%} for the control: the drop is at "
                      f"least {-high:.1%} with {rules.confidence:.0%} confidence (limit "
                      f"{rules.max_accuracy_drop:.1%})")
    return None
