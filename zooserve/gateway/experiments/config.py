"""Experiments declared in YAML, validated with pydantic; a bad file names the field and its line.

    experiments:
      - name: resnet_vs_mobilenet
        control: a
        assignment: {mode: sticky, key: X-User-ID}
        variants:
          - {name: a, model: resnet50, weight: 50}
          - {name: b, model: mobilenet_v2, weight: 50}
        shadows: [densenet264]
        guardrails: {max_error_rate_increase: 0.05, max_p99_latency_ratio: 2.0}
        ramp: {variant: b, start_weight: 5, step: 10, every_s: 600, max_weight: 50}
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"


class ExperimentConfigError(ValueError):
    """A file that cannot become the running configuration; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    model: str
    version: str | None = None
    weight: float = Field(gt=0, description="relative share of traffic")


class Assignment(_Strict):
    mode: Literal["random", "sticky"] = "random"
    key: str = Field(default="X-User-ID", description="request header whose value decides a sticky variant")


class Guardrails(_Strict):
    """Limits for every non-control variant against the control; a breach with confidence stops its traffic."""

    max_error_rate_increase: float | None = Field(default=None, ge=0, le=1)
    max_p99_latency_ratio: float | None = Field(default=None, gt=1)
    max_accuracy_drop: float | None = Field(default=None, ge=0, le=1)
    min_requests: int = Field(default=100, ge=10, description="per variant before a guardrail may trip")
    min_labels: int = Field(default=100, ge=10, description="labelled requests per variant for accuracy")
    confidence: float = Field(default=0.95, gt=0.5, lt=1)


class Ramp(_Strict):
    """A canary: the variant's weight rises by ``step`` every ``every_s`` seconds while guardrails hold."""

    variant: str
    start_weight: float = Field(gt=0)
    step: float = Field(gt=0)
    every_s: float = Field(gt=0)
    max_weight: float = Field(gt=0)


class Experiment(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    control: str
    variants: list[Variant] = Field(min_length=2)
    assignment: Assignment = Assignment()
    shadows: list[str] = Field(default_factory=list, description="models that get a copy of every request")
    guardrails: Guardrails = Guardrails()
    ramp: Ramp | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Experiment":
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        if self.control not in names:
            raise ValueError(f"control {self.control!r} is not one of the variants {names}")
        if self.ramp and self.ramp.variant not in names:
            raise ValueError(f"ramp variant {self.ramp.variant!r} is not one of the variants {names}")
        if self.ramp and self.ramp.variant == self.control:
            raise ValueError("the control cannot be ramped")
        return self

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)


class ExperimentsFile(_Strict):
    experiments: list[Experiment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> "ExperimentsFile":
        names = [e.name for e in self.experiments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"experiment names must be unique: {', '.join(duplicates)}")
        return self

    def by_name(self) -> dict[str, Experiment]:
        return {e.name: e for e in self.experiments}


def _line_of(root: yaml.Node | None, location: tuple) -> int | None:
    """1-based line of the YAML node at a pydantic error location, or of its nearest parent."""
    node, line = root, None
    for part in location:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
    return node.start_mark.line + 1 if node is not None else line


def parse(text: str, source: str, models: Iterable[str]) -> ExperimentsFile:
    """Validates the file against the schema and the catalog of models; raises ExperimentConfigError."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ExperimentConfigError(f"{source}: not valid YAML: {exc}") from None
    try:
        parsed = ExperimentsFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        line = _line_of(root, first["loc"])
        where = f"line {line}, " if line else ""
        raise ExperimentConfigError(f"{source}: {where}{field}: {first['msg']}") from None
    _check_models(parsed, set(models), source)
    return parsed


def _check_models(parsed: ExperimentsFile, models: set[str], source: str) -> None:
    for experiment in parsed.experiments:
        if experiment.name in models:
            raise ExperimentConfigError(f"{source}: experiment {experiment.name!r} has the name of a model")
        for model in [v.model for v in experiment.variants] + experiment.shadows:
            if model not in models:
                raise ExperimentConfigError(
                    f"{source}: experiment {experiment.name!r} names unknown model {model!r}"
                )


def load(path: Path, models: Iterable[str]) -> ExperimentsFile:
    return parse(path.read_text(encoding="utf-8"), str(path), models)
