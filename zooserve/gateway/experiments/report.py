"""The A/B report: per-variant figures, each variant against the control, a verdict in plain words.

A pure function of the recorded rows (see store.RecordStore.records), so it is the same whichever
database holds them and is checked in tests against scipy/statsmodels on known data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .config import Experiment
from .stats import Comparison, latency_comparison, percentile, samples_needed, two_proportions, wilson_interval

ALPHA = 0.05


@dataclass
class VariantFigures:
    variant: str
    model: str
    requests: int
    errors: int
    error_rate: float | None
    latency_ms: dict[str, float | None]
    labelled: int
    correct: int
    accuracy: float | None
    accuracy_ci: tuple[float, float] | None
    agreement_with_control: float | None
    agreement_pairs: int
    latencies: list[float] = field(default_factory=list, repr=False)


def variant_figures(experiment: Experiment, rows: list[dict[str, Any]], variant: str) -> VariantFigures:
    model = experiment.variant(variant).model
    primary = [r for r in rows if r["kind"] == "primary" and r["variant"] == variant]
    errors = sum(1 for r in primary if r["status"] != 200)
    ok_latencies = [r["latency_ms"] for r in primary if r["status"] == 200]
    labelled = [r for r in primary if r["label_index"] is not None and r["status"] == 200]
    correct = sum(1 for r in labelled if r["label_index"] == r["top1_index"])
    agreements = _agreements(experiment, rows, variant)
    return VariantFigures(
        variant=variant,
        model=model,
        requests=len(primary),
        errors=errors,
        error_rate=errors / len(primary) if primary else None,
        latency_ms={f"p{q}": percentile(ok_latencies, q) for q in (50, 95, 99)},
        labelled=len(labelled),
        correct=correct,
        accuracy=correct / len(labelled) if labelled else None,
        accuracy_ci=wilson_interval(correct, len(labelled)) if labelled else None,
        agreement_with_control=sum(agreements) / len(agreements) if agreements else None,
        agreement_pairs=len(agreements),
        latencies=ok_latencies,
    )


def _agreements(experiment: Experiment, rows: list[dict[str, Any]], variant: str) -> list[bool]:
    """Same image, both models: the variant's answer shadowed by the control model, or the reverse."""
    if variant == experiment.control:
        return []
    control_model = experiment.variant(experiment.control).model
    model = experiment.variant(variant).model
    primary_variant = {r["request_id"]: r["variant"] for r in rows if r["kind"] == "primary"}
    return [
        bool(r["agrees"])
        for r in rows
        if r["kind"] == "shadow" and r["agrees"] is not None and (
            (primary_variant.get(r["request_id"]) == variant and r["model"] == control_model)
            or (primary_variant.get(r["request_id"]) == experiment.control and r["model"] == model)
        )
    ]


def compare(treatment: VariantFigures, control: VariantFigures) -> dict[str, Comparison]:
    return {
        "accuracy": two_proportions(treatment.correct, treatment.labelled, control.correct, control.labelled),
        "error_rate": two_proportions(treatment.errors, treatment.requests, control.errors, control.requests),
        "latency_ms": latency_comparison(treatment.latencies, control.latencies),
    }


def verdict(treatment: VariantFigures, control: VariantFigures, comparison: dict[str, Comparison]) -> str:
    name, base = treatment.variant, control.variant
    accuracy = comparison["accuracy"]
    if treatment.labelled == 0 or control.labelled == 0:
        return f"no labelled requests yet for {name if treatment.labelled == 0 else base}: send POST /feedback"
    if accuracy.p_value < ALPHA:
        better = accuracy.difference > 0
        return (f"{name} {'better' if better else 'worse'} than {base}: accuracy {accuracy.difference:+.1%} "
                f"(95% CI {accuracy.low:+.1%} to {accuracy.high:+.1%}, p = {accuracy.p_value:.3g})")
    needed = samples_needed(control.accuracy, treatment.accuracy)
    if needed is None:
        return f"no significant difference yet: {name} and {base} have the same accuracy so far"
    more = max(0, needed - min(treatment.labelled, control.labelled))
    return (f"no significant difference yet: about {more} more labelled requests per variant needed to detect "
            f"this effect ({accuracy.difference:+.1%}, p = {accuracy.p_value:.2f})")


def build_report(experiment: Experiment, rows: list[dict[str, Any]], state: dict[str, Any] | None = None) -> dict:
    figures = {v.name: variant_figures(experiment, rows, v.name) for v in experiment.variants}
    control = figures[experiment.control]
    report = {
        "experiment": experiment.name,
        "control": experiment.control,
        "state": state or {},
        "variants": [_public(f) for f in figures.values()],
        "comparisons": [],
    }
    for name, treatment in figures.items():
        if name == experiment.control:
            continue
        comparison = compare(treatment, control)
        report["comparisons"].append({
            "variant": name,
            "against": experiment.control,
            **{metric: asdict(result) for metric, result in comparison.items()},
            "verdict": verdict(treatment, control, comparison),
        })
    return report


def _public(figures: VariantFigures) -> dict[str, Any]:
    data = asdict(figures)
    data.pop("latencies")
    return data
