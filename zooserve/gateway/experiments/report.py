"""The A/B report: per-variant figures, each variant against the control, a verdict in plain words.

A pure function of the experiment's running totals (totals.ExperimentTotals, which the database sums), so
it costs the same at a thousand records as at ten million, and is checked in tests against scipy and
statsmodels on the records themselves. Each comparison gives the fixed-horizon figures (stats.py) and
the sequential ones (sequential.py: always-valid p-values and confidence sequences, with their course
over time for the chart); the verdict uses the sequential ones, since people read reports while the
experiment runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from . import sequential
from .config import Experiment
from .latency import Histogram
from .stats import Comparison, latency_comparison, two_proportions, wilson_interval
from .totals import ExperimentTotals

ALPHA = 0.05
SERIES_POINTS = 120  # at most this many looks of each comparison's course over time go into the report


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
    histogram: Histogram = field(repr=False)
    # cumulative requests, errors, labelled, correct at the end of each time bucket
    cumulative: dict[str, np.ndarray] = field(repr=False)


def variant_figures(experiment: Experiment, totals: ExperimentTotals, variant: str) -> VariantFigures:
    requests, errors = totals.total(variant, "requests"), totals.total(variant, "errors")
    labelled, correct = totals.total(variant, "labelled"), totals.total(variant, "correct")
    compared, agreed = _agreement(experiment, totals, variant)
    histogram = totals.histogram(variant)
    return VariantFigures(
        variant=variant,
        model=experiment.variant(variant).model,
        requests=requests,
        errors=errors,
        error_rate=errors / requests if requests else None,
        latency_ms={f"p{q}": histogram.percentile(q) for q in (50, 95, 99)},
        labelled=labelled,
        correct=correct,
        accuracy=correct / labelled if labelled else None,
        accuracy_ci=wilson_interval(correct, labelled) if labelled else None,
        agreement_with_control=agreed / compared if compared else None,
        agreement_pairs=compared,
        histogram=histogram,
        cumulative={count: totals.series(variant, count) for count in ("requests", "errors", "labelled", "correct")},
    )


def _agreement(experiment: Experiment, totals: ExperimentTotals, variant: str) -> tuple[int, int]:
    """Same image, both models: the variant's answer shadowed by the control model, or the reverse."""
    if variant == experiment.control:
        return 0, 0
    pairs = [totals.agreement.get((variant, experiment.variant(experiment.control).model), (0, 0)),
             totals.agreement.get((experiment.control, experiment.variant(variant).model), (0, 0))]
    return sum(p[0] for p in pairs), sum(p[1] for p in pairs)


def compare(treatment: VariantFigures, control: VariantFigures) -> dict[str, Comparison]:
    return {
        "accuracy": two_proportions(treatment.correct, treatment.labelled, control.correct, control.labelled),
        "error_rate": two_proportions(treatment.errors, treatment.requests, control.errors, control.requests),
        "latency_ms": latency_comparison(treatment.histogram, control.histogram),
    }


def sequences(treatment: VariantFigures, control: VariantFigures,
              alpha: float = ALPHA) -> dict[str, sequential.Sequence]:
    """The sequential comparisons, one look per time bucket."""
    t, c = treatment.cumulative, control.cumulative
    return {
        "accuracy": sequential.two_proportions(t["correct"], t["labelled"], c["correct"], c["labelled"], alpha),
        "error_rate": sequential.two_proportions(t["errors"], t["requests"], c["errors"], c["requests"], alpha),
    }


def verdict(treatment: VariantFigures, control: VariantFigures, accuracy: sequential.Sequence) -> str:
    name, base = treatment.variant, control.variant
    if treatment.labelled == 0 or control.labelled == 0:
        return f"no labelled requests yet for {name if treatment.labelled == 0 else base}: send POST /feedback"
    last = accuracy.last()
    if last["p_value"] < ALPHA:
        better = last["difference"] > 0
        return (f"{name} {'better' if better else 'worse'} than {base}: accuracy {last['difference']:+.1%} "
                f"(95% confidence sequence {last['low']:+.1%} to {last['high']:+.1%}, "
                f"always-valid p = {last['p_value']:.3g})")
    needed = sequential.trials_to_detect(treatment.accuracy, control.accuracy, ALPHA)
    if needed is None:
        return f"no significant difference yet: {name} and {base} have the same accuracy so far"
    more = max(1, needed - min(treatment.labelled, control.labelled))
    return (f"no significant difference yet: about {more} more labelled requests per variant needed to detect "
            f"this effect ({last['difference']:+.1%}, always-valid p = {last['p_value']:.2f})")


def _course(buckets: np.ndarray, sequence: sequential.Sequence) -> dict[str, list[float]]:
    """A comparison's course over time, from the first look the test counted, thinned to SERIES_POINTS."""
    looks = sequence.counted()
    looks = looks[np.unique(np.linspace(0, len(looks) - 1, min(len(looks), SERIES_POINTS)).round().astype(int))] \
        if len(looks) else looks
    return {"time": buckets[looks].tolist(), "difference": sequence.difference[looks].tolist(),
            "low": sequence.low[looks].tolist(), "high": sequence.high[looks].tolist()}


def build_report(experiment: Experiment, totals: ExperimentTotals, state: dict[str, Any] | None = None) -> dict:
    figures = {v.name: variant_figures(experiment, totals, v.name) for v in experiment.variants}
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
        fixed, running = compare(treatment, control), sequences(treatment, control)
        report["comparisons"].append({
            "variant": name,
            "against": experiment.control,
            **{metric: asdict(result) for metric, result in fixed.items()},
            "sequential": {metric: sequence.last() for metric, sequence in running.items()},
            "course": {metric: _course(totals.buckets, sequence) for metric, sequence in running.items()},
            "verdict": verdict(treatment, control, running["accuracy"]),
        })
    return report


def _public(figures: VariantFigures) -> dict[str, Any]:
    return {f.name: getattr(figures, f.name) for f in fields(figures) if f.name not in ("histogram", "cumulative")}
