"""The gate's slice rules: no slice of the test rows may be too poor, or much worse than before.

evaluation.json's ``slices`` block (``include/training/slices.py``) holds the primary metric per
slice for the candidate, the champion and their paired difference. Two optional rules, each one
check in the verdict, naming the slice that decides it:

- ``slice_min_metric``: the worst slice's candidate value must reach the minimum;
- ``slice_max_regression``: no slice may be worse than the champion's same slice by more than
  the margin (needs a champion; on the first run the rule is noted, not applied).

Slices with fewer test rows than ``slice_min_rows`` are not judged: their intervals are too wide
to decide on. With the ``lower_bound`` decision basis each slice is judged on the conservative end
of its 95% interval, as the overall checks are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from include.training.catalogue import LOWER_IS_BETTER


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _judged(evaluation: Mapping[str, Any], min_rows: int) -> tuple[list[dict], int]:
    """Slices with at least ``min_rows`` rows, each as ``{"name", ...entry}``; and how many
    were too small."""
    block = evaluation.get("slices") or {}
    judged, small = [], 0
    for column in block.get("columns", []):
        for entry in column.get("slices", []):
            if entry.get("rows", 0) < min_rows:
                small += 1
                continue
            judged.append({"name": f"{column['column']}={entry['value']}", **entry})
    return judged, small


def _number(entry: Mapping[str, Any] | None, key: str = "value") -> float | None:
    value = (entry or {}).get(key)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _basis_value(entry: Mapping[str, Any] | None, basis: str, lower: bool) -> float | None:
    """The point value, or the conservative end of the interval on the lower_bound basis."""
    if basis != "lower_bound":
        return _number(entry)
    return _number((entry or {}).get("confidence_interval"), "lower" if lower else "upper")


def _min_metric_check(judged: list[dict], metric: str, minimum: float, basis: str) -> dict:
    higher = metric not in LOWER_IS_BETTER
    op = ">=" if higher else "<="
    scored = [(s, _basis_value(s.get("candidate"), basis, lower=higher)) for s in judged]
    missing = [s["name"] for s, v in scored if v is None]
    if missing:
        return {"metric": f"{metric} of worst slice", "value": None, "op": op, "threshold": minimum,
                "passed": False, "reason": f"slice(s) {', '.join(missing)} have no candidate "
                f"{metric} in evaluation.json"}
    worst, value = (min if higher else max)(scored, key=lambda sv: sv[1])
    failing = [f"{s['name']} ({_fmt(v)})" for s, v in scored if (v < minimum if higher else v > minimum)]
    what = "95% interval bound" if basis == "lower_bound" else "value"
    reason = "" if not failing else (
        f"slice {worst['name']}: {metric} {what} {_fmt(value)} does not satisfy {op} "
        f"{_fmt(minimum)} (slice minimum)" + (f"; failing slices: {', '.join(failing)}"
                                              if len(failing) > 1 else ""))
    return {"metric": f"{metric} of worst slice ({worst['name']})", "value": value, "op": op,
            "threshold": minimum, "passed": not failing, "reason": reason}


def _regression_check(judged: list[dict], metric: str, margin: float, basis: str) -> dict:
    higher = metric not in LOWER_IS_BETTER
    floor = -margin + 0.0
    scored = []
    for s in judged:
        delta = s.get("delta")
        decided = _basis_value(delta, basis, lower=higher)
        # improvement > 0 means the candidate is better on this slice, whatever the direction
        scored.append((s, None if decided is None else (decided if higher else -decided)))
    missing = [s["name"] for s, v in scored if v is None]
    if missing:
        return {"metric": f"{metric} slice regression vs champion", "value": None, "op": ">=",
                "threshold": floor, "passed": False, "reason": f"slice(s) {', '.join(missing)} lack "
                f"the champion's {metric} or the delta in evaluation.json"}
    worst, value = min(scored, key=lambda sv: sv[1])
    failing = [f"{s['name']} (worse by {_fmt(-v)})" for s, v in scored if v < floor]
    reason = "" if not failing else (
        f"slice {worst['name']}: candidate {metric} {_fmt(_number(worst['candidate']))} is worse than "
        f"the champion's {_fmt(_number(worst['champion']))} by {_fmt(-value)} (tolerated slice "
        f"regression {_fmt(margin)})" + (f"; failing slices: {', '.join(failing)}"
                                         if len(failing) > 1 else ""))
    return {"metric": f"{metric} slice regression vs champion ({worst['name']})", "value": value,
            "op": ">=", "threshold": floor, "passed": not failing,
            "champion_value": _number(worst.get("champion")), "delta": _number(worst.get("delta")),
            "reason": reason}


def slice_checks(evaluation: Mapping[str, Any], metric: str, *, min_metric: float | None,
                 max_regression: float | None, min_rows: int, basis: str,
                 has_champion: bool) -> tuple[list[dict], list[str]]:
    """The slice checks (as ``verdict.Check`` fields) and notes for the verdict."""
    if min_metric is None and max_regression is None:
        return [], []
    if not evaluation.get("slices"):
        check = {"metric": f"{metric} per slice", "value": None, "op": ">=",
                 "threshold": min_metric if min_metric is not None else -(max_regression or 0.0),
                 "passed": False, "reason": "slice rules are set but evaluation.json has no "
                 "slices block (set slice_columns so evaluate reports slices)"}
        return [check], []
    judged, small = _judged(evaluation, min_rows)
    notes = [f"{small} slice(s) with fewer than {min_rows} test rows reported, not judged"] if small else []
    if not judged:
        return [], notes + ["no slice has enough test rows: slice rules not applied"]
    checks = []
    if min_metric is not None:
        checks.append(_min_metric_check(judged, metric, min_metric, basis))
    if max_regression is not None:
        if has_champion:
            checks.append(_regression_check(judged, metric, max_regression, basis))
        else:
            notes.append("no Approved champion yet: slice regression rule not applied")
    return checks, notes
