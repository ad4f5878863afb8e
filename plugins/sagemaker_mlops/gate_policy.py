"""The gate's policy: the thresholds and the champion, leakage and slice rules a run is judged by.

Apart from the decision (``gate.py``) because it is built and checked at trigger time, in
``validate_params``, and travels to ``quality_gate`` inside the run's plan: a policy that cannot
be applied (unknown metric or operator, negative margin) fails before any job starts.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

# the metric vocabulary both sides share
from include.training.catalogue import LOWER_IS_BETTER, METRIC_NAMES, PRIMARY_METRIC
from sagemaker_mlops.verdict import format_number

METRICS_BY_PROBLEM = METRIC_NAMES
DECISION_BASES = ("point", "lower_bound")

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class Threshold:
    metric: str
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(
                f"threshold for {self.metric}: operator {self.op!r} is not one of "
                f"{', '.join(OPERATORS)}"
            )
        if not math.isfinite(self.value):
            raise ValueError(f"threshold for {self.metric}: value must be finite, got {self.value}")

    @classmethod
    def parse(cls, metric: str, spec: str | int | float) -> Threshold:
        """Read ``">= 0.6"`` (or a bare number, meaning the metric's natural direction)."""
        if isinstance(spec, int | float) and not isinstance(spec, bool):
            op = "<=" if metric in LOWER_IS_BETTER else ">="
            return cls(metric, op, float(spec))
        text = str(spec).strip()
        for op in (">=", "<=", ">", "<"):
            if text.startswith(op):
                number = text[len(op) :].strip()
                try:
                    return cls(metric, op, float(number))
                except ValueError:
                    break
        raise ValueError(
            f"threshold for {metric}: expected '<op> <number>' with op one of > >= < <= "
            f"(e.g. '>= 0.6'), got {spec!r}"
        )

    @property
    def is_minimum(self) -> bool:
        return self.op in (">", ">=")

    def describe(self) -> str:
        return f"{self.op} {format_number(self.value)}"


DEFAULT_THRESHOLDS: dict[str, tuple[Threshold, ...]] = {
    "regression": (Threshold("r2_score", ">=", 0.6),),
    "classification": (
        Threshold("accuracy", ">", 0.90),
        Threshold("precision", ">", 0.85),
        Threshold("recall", ">", 0.85),
        Threshold("f1", ">", 0.85),
    ),
}


@dataclass(frozen=True)
class GatePolicy:
    problem_type: str
    thresholds: tuple[Threshold, ...]
    champion_margin: float = 0.0
    decision_basis: str = "point"
    leakage_max_improvement: float | None = None
    slice_min_metric: float | None = None
    slice_max_regression: float | None = None
    slice_min_rows: int = 30

    def __post_init__(self) -> None:
        if self.problem_type not in METRICS_BY_PROBLEM:
            raise ValueError(
                f"problem type {self.problem_type!r} is not one of {', '.join(METRICS_BY_PROBLEM)}"
            )
        known = METRICS_BY_PROBLEM[self.problem_type]
        for threshold in self.thresholds:
            if threshold.metric not in known:
                raise ValueError(
                    f"threshold metric {threshold.metric!r} is not a {self.problem_type} metric; "
                    f"choose from {', '.join(known)}"
                )
        if self.decision_basis not in DECISION_BASES:
            raise ValueError(
                f"decision basis {self.decision_basis!r} is not one of {', '.join(DECISION_BASES)}"
            )
        if not (math.isfinite(self.champion_margin) and self.champion_margin >= 0):
            raise ValueError(f"champion margin must be >= 0, got {self.champion_margin}")
        if self.leakage_max_improvement is not None and not self.leakage_max_improvement > 0:
            raise ValueError(
                f"leakage tripwire must be > 0 (or off), got {self.leakage_max_improvement}"
            )
        if self.slice_min_metric is not None and not math.isfinite(self.slice_min_metric):
            raise ValueError(f"slice minimum must be a finite number, got {self.slice_min_metric}")
        if self.slice_max_regression is not None and not (
            math.isfinite(self.slice_max_regression) and self.slice_max_regression >= 0
        ):
            raise ValueError(f"slice max regression must be >= 0, got {self.slice_max_regression}")
        if isinstance(self.slice_min_rows, bool) or not (
            isinstance(self.slice_min_rows, int) and self.slice_min_rows >= 1
        ):
            raise ValueError(f"slice min rows must be an integer >= 1, got {self.slice_min_rows!r}")

    @property
    def primary_metric(self) -> str:
        return PRIMARY_METRIC[self.problem_type]

    @property
    def delta_floor(self) -> float:
        """Least candidate − champion difference accepted (+ 0.0 avoids printing -0)."""
        return -self.champion_margin + 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "thresholds": [asdict(t) for t in self.thresholds]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GatePolicy:
        values = dict(data)
        values["thresholds"] = tuple(Threshold(**t) for t in values.get("thresholds", ()))
        return cls(**values)

    @classmethod
    def build(
        cls,
        problem_type: str,
        thresholds: Mapping[str, str | float] | None = None,
        **options: Any,
    ) -> GatePolicy:
        """Policy from user-facing values; ``thresholds=None`` means the defaults."""
        if thresholds is None:
            parsed = DEFAULT_THRESHOLDS.get(problem_type, ())
        else:
            parsed = tuple(Threshold.parse(m, spec) for m, spec in thresholds.items())
        return cls(problem_type=problem_type, thresholds=tuple(parsed), **options)
