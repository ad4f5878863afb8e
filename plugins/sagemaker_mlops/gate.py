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
from collections.abc import Mapping
from typing import Any

# the evaluation.json block names both sides share
from include.training.catalogue import LOWER_IS_BETTER, METRIC_BLOCKS
from sagemaker_mlops.gate_policy import OPERATORS, GatePolicy, Threshold
from sagemaker_mlops.slice_gate import slice_checks
from sagemaker_mlops.verdict import Check, Verdict, format_number


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
