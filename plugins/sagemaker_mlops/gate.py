"""The quality gate: decide from evaluation.json whether a candidate model may ship.

Pure policy, no I/O. Checks, all of which must pass:
- one per threshold (``metric op value``, op one of > >= < <=) on the candidate's metric;
- champion rule (when a champion was scored): the candidate may be worse than the champion on
  the primary metric by at most ``champion_margin`` (default 0, "no worse");
- leakage tripwire (off by default): a candidate better than the champion on the primary
  metric by more than ``leakage_max_improvement`` fails, as such jumps usually mean leakage;
- slice rules (off unless set, ``slice_gate.py``): the worst slice of the test rows reaches
  ``slice_min_metric`` and no slice is worse than the champion's by more than
  ``slice_max_regression``; slices under ``slice_min_rows`` test rows are not judged;
- the evaluation's load-and-predict check of the artifact.
Decision basis ``point`` uses the point estimates. ``lower_bound`` uses the conservative end of
the bootstrap 95% interval instead: the lower bound for a minimum (``>``, ``>=``), the upper
bound for a maximum (``<``, ``<=``), and for the champion rule the paired interval of
candidate − champion. A metric missing from evaluation.json fails its check with the reason.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

# the metric vocabulary and evaluation.json block names both sides share
from include.training.catalogue import (
    LOWER_IS_BETTER,
    METRIC_BLOCKS,
    METRIC_NAMES,
    PRIMARY_METRIC,
)
from sagemaker_mlops.slice_gate import slice_checks

VERDICT_SCHEMA_VERSION = "1.0"
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


@dataclass
class Check:
    metric: str
    value: float | None
    op: str
    threshold: float
    passed: bool
    champion_value: float | None = None
    delta: float | None = None
    reason: str = ""


@dataclass
class Verdict:
    passed: bool
    decision_basis: str
    problem_type: str
    primary_metric: str
    checks: list[Check]
    reasons: list[str]
    champion: dict[str, Any] | None = None
    schema_version: str = VERDICT_SCHEMA_VERSION
    notes: list[str] = field(default_factory=list)

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        values = dict(data)
        values["checks"] = [Check(**c) for c in values.get("checks", [])]
        return cls(**values)


def format_number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "missing"
    if not math.isfinite(value):
        return str(value)
    sign = "+" if signed else ""
    if abs(value) >= 1000:
        return f"{value:{sign},.1f}"
    return f"{value:{sign}.4f}"


def metrics_block(evaluation: Mapping[str, Any], problem_type: str) -> tuple[str, dict | None]:
    """The SageMaker model-quality block for the problem type, e.g. ``regression_metrics``."""
    names = METRIC_BLOCKS[problem_type]
    for name in names:
        block = evaluation.get(name)
        if isinstance(block, dict):
            return name, block
    return " or ".join(names), None


def _metric_entry(block: Mapping[str, Any] | None, metric: str) -> dict | None:
    entry = (block or {}).get(metric)
    if isinstance(entry, dict) and _finite(entry.get("value")):
        return entry
    return None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _interval_end(entry: Mapping[str, Any], lower: bool) -> float | None:
    interval = entry.get("confidence_interval") or {}
    end = interval.get("lower" if lower else "upper")
    return float(end) if _finite(end) else None


def _threshold_check(
    threshold: Threshold, block_name: str, block: dict | None, basis: str
) -> Check:
    entry = _metric_entry(block, threshold.metric)
    if entry is None:
        return Check(
            threshold.metric, None, threshold.op, threshold.value, False,
            reason=f"metric {threshold.metric!r} missing from evaluation.json ({block_name})",
        )
    value = float(entry["value"])
    if basis == "lower_bound":
        # the conservative end: a minimum must hold at the lower bound, a maximum at the upper
        bound = _interval_end(entry, lower=threshold.is_minimum)
        if bound is None:
            return Check(
                threshold.metric, None, threshold.op, threshold.value, False,
                reason=f"metric {threshold.metric!r} has no confidence_interval in "
                f"evaluation.json, which the lower_bound decision basis needs",
            )
        value = bound
    passed = OPERATORS[threshold.op](value, threshold.value)
    what = "95% interval bound" if basis == "lower_bound" else "value"
    reason = "" if passed else (
        f"{threshold.metric} {what} {format_number(value)} does not satisfy "
        f"{threshold.describe()}"
    )
    return Check(threshold.metric, value, threshold.op, threshold.value, passed, reason=reason)


def _champion_checks(
    evaluation: Mapping[str, Any], policy: GatePolicy, block_name: str
) -> tuple[list[Check], dict[str, Any]]:
    metric = policy.primary_metric
    floor = policy.delta_floor
    champion = evaluation.get("champion") or {}
    name = f"{metric} vs champion"
    _, champion_block = metrics_block(champion, policy.problem_type)
    champion_entry = _metric_entry(champion_block, metric)
    delta_info = champion.get("delta") or {}
    summary = {"model_uri": champion.get("model_uri"), "metric": metric}
    if champion_entry is None or not _finite(delta_info.get("value")):
        check = Check(
            name, None, ">=", floor, False,
            reason=f"champion block in evaluation.json lacks {metric} or its delta ({block_name})",
        )
        return [check], summary
    champion_value = float(champion_entry["value"])
    delta = float(delta_info["value"])
    higher_better = metric not in LOWER_IS_BETTER
    # improvement > 0 means the candidate is better, whatever the metric's direction
    improvement = delta if higher_better else -delta
    decided = improvement
    if policy.decision_basis == "lower_bound":
        bound = _interval_end(delta_info, lower=higher_better)
        if bound is None:
            check = Check(
                name, None, ">=", floor, False, champion_value, delta,
                reason="champion delta has no confidence_interval, which the lower_bound "
                "decision basis needs",
            )
            return [check], summary
        decided = bound if higher_better else -bound
    summary.update(value=champion_value, delta=delta)
    passed = decided >= floor
    reason = "" if passed else (
        f"candidate is worse than the champion on {metric} by {format_number(-decided)} "
        f"(tolerated margin {format_number(policy.champion_margin)})"
    )
    checks = [
        Check(name, decided, ">=", floor, passed, champion_value, delta, reason)
    ]
    if policy.leakage_max_improvement is not None:
        limit = policy.leakage_max_improvement
        suspicious = improvement > limit
        checks.append(
            Check(
                f"{metric} improvement (leakage tripwire)", improvement, "<=", limit,
                not suspicious, champion_value, delta,
                reason=(
                    f"candidate beats the champion on {metric} by {format_number(improvement)}, "
                    f"more than the tripwire {format_number(limit)}: check for target leakage "
                    "or a changed test set"
                )
                if suspicious
                else "",
            )
        )
    return checks, summary


def decide(
    evaluation: Mapping[str, Any], policy: GatePolicy, champion_expected: bool = False
) -> Verdict:
    """Apply the policy to an evaluation.json document."""
    if not isinstance(evaluation, Mapping):
        raise ValueError(f"evaluation.json must hold a JSON object, got {type(evaluation).__name__}")
    version = str(evaluation.get("schema_version", ""))
    if not version.startswith("1."):
        raise ValueError(
            f"evaluation.json schema_version {version or 'missing'!r} is not supported (expected 1.x)"
        )
    block_name, block = metrics_block(evaluation, policy.problem_type)
    checks = [_threshold_check(t, block_name, block, policy.decision_basis) for t in policy.thresholds]
    notes: list[str] = []
    champion_summary = None
    if evaluation.get("champion"):
        champion_checks, champion_summary = _champion_checks(evaluation, policy, block_name)
        checks.extend(champion_checks)
    elif champion_expected:
        floor = policy.delta_floor
        checks.append(
            Check(
                f"{policy.primary_metric} vs champion", None, ">=", floor, False,
                reason="an Approved champion exists but evaluation.json has no champion block",
            )
        )
    else:
        notes.append("no Approved champion yet: absolute thresholds only")
    found, slice_notes = slice_checks(
        evaluation, policy.primary_metric, min_metric=policy.slice_min_metric,
        max_regression=policy.slice_max_regression, min_rows=policy.slice_min_rows,
        basis=policy.decision_basis, has_champion=bool(evaluation.get("champion")),
    )
    checks.extend(Check(**c) for c in found)
    notes.extend(slice_notes)
    load_check = evaluation.get("load_check")
    load_ok = isinstance(load_check, dict) and load_check.get("passed") is True
    checks.append(
        Check(
            "load_check", 1.0 if load_ok else 0.0, "==", 1.0, load_ok,
            reason="" if load_ok else "load-and-predict check of the artifact failed: "
            + str((load_check or {}).get("message", "no load_check in evaluation.json")),
        )
    )
    reasons = [c.reason for c in checks if not c.passed]
    return Verdict(
        passed=not reasons,
        decision_basis=policy.decision_basis,
        problem_type=policy.problem_type,
        primary_metric=policy.primary_metric,
        checks=checks,
        reasons=reasons,
        champion=champion_summary,
        notes=notes,
    )


def _required(check: Check) -> str:
    if check.metric == "load_check":
        return "loads and predicts"
    return f"{check.op} {format_number(check.threshold)}"


def _shown_value(check: Check) -> str:
    if check.metric == "load_check":
        return "ok" if check.passed else "failed"
    value = format_number(check.value, signed=check.champion_value is not None)
    if check.champion_value is not None:
        value += f" (champion {format_number(check.champion_value)})"
    return value


def render_table(verdict: Verdict) -> str:
    """The verdict as the table ``Metric | Value | Required threshold | Conclusion``."""
    header = ("Metric", "Value", "Required threshold", "Conclusion")
    rows = [
        (c.metric, _shown_value(c), _required(c), "PASS" if c.passed else "FAIL")
        for c in verdict.checks
    ]
    return _table(header, rows)


def _table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    rows = list(rows)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    separator = "-|-".join("-" * w for w in widths)
    return "\n".join([line(header), separator, *(line(r) for r in rows)])


def summary_line(verdict: Verdict) -> str:
    outcome = "PASSED" if verdict.passed else "FAILED"
    basis = "point estimates" if verdict.decision_basis == "point" else "95% interval bounds"
    failed = len(verdict.failed_checks)
    return (
        f"Quality gate {outcome} on {basis}: {len(verdict.checks) - failed}/"
        f"{len(verdict.checks)} checks passed"
    )
