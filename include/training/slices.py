"""Slice metrics: the primary metric per value of a slice column, candidate and champion.

A model can be good on average and poor for one group of rows (one region, one product line);
the overall metric hides it. For each slice column the test rows are grouped by value and the
primary metric is computed on each group with the evaluation's own functions (``metrics.py``
point values, ``bootstrap.py`` intervals; candidate and champion on the same resampled rows, so
the interval of their difference is paired). Slices with fewer rows than ``min_rows`` are
reported and flagged ``small``; the gate does not judge them (their intervals are too wide).

Grouping: a categorical column's values (plus categories the schema lists but the test rows
lack, with 0 rows, so a vanished group is visible); a numeric column with at most ``bins``
distinct values the same way; any other numeric column in ``bins`` quantile bins of the test
rows (edges rounded for reading). Missing values form their own ``(missing)`` slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from bootstrap import Outputs, bootstrap_replicates, summarize
from failure import InputError
from metrics import classification_metrics, regression_metrics

MISSING = "(missing)"


@dataclass(frozen=True)
class SliceOptions:
    """What to slice by and how; ``columns`` empty means no slice report."""

    columns: tuple[str, ...] = ()
    min_rows: int = 30
    bins: int = 4
    max_slices: int = 50


def column_kinds(schema: dict | None, columns: Sequence[str], target: str) -> dict[str, dict]:
    """Each slice column's schema entry (kind, categories); InputError naming a column that is
    not a feature of the model (the test split holds only the features and the target)."""
    features = {f["name"]: f for f in (schema or {}).get("features", [])}
    found = {}
    for column in columns:
        if column == target:
            raise InputError(f"slice column {column!r} is the target; slice by a feature column")
        if column not in features:
            raise InputError(f"slice column {column!r} is not a feature of the candidate model "
                             f"(features: {', '.join(features) or 'none recorded'})")
        found[column] = features[column]
    return found


def _label(value: float) -> str:
    return f"{value:.4g}"


def groups(values: pd.Series, feature: dict, bins: int, max_slices: int) -> list[tuple[str, np.ndarray, dict]]:
    """``(label, row indices, extra facts)`` per slice of one column: categories largest first,
    numeric values and bins in ascending order, the missing-value slice last."""
    column = feature["name"]
    missing = values.isna().to_numpy()
    out: list[tuple[str, np.ndarray, dict]] = []
    if feature["kind"] == "numeric":
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
        missing = ~np.isfinite(numbers)
        distinct = np.unique(numbers[~missing])
        if len(distinct) <= bins:
            out = [(_label(v), np.flatnonzero(numbers == v), {"value": float(v)}) for v in distinct]
        else:
            edges = np.unique(np.quantile(numbers[~missing], np.linspace(0, 1, bins + 1)))
            codes = np.clip(np.searchsorted(edges, numbers, side="right") - 1, 0, len(edges) - 2)
            for k in range(len(edges) - 1):
                lo, hi = float(edges[k]), float(edges[k + 1])
                close = "]" if k == len(edges) - 2 else ")"
                out.append((f"[{_label(lo)}, {_label(hi)}{close}", np.flatnonzero(~missing & (codes == k)),
                            {"lower": lo, "upper": hi}))
    else:
        text = values.astype(str).where(~missing)
        known = [str(c) for c in feature.get("categories") or []]
        present = pd.unique(text[~missing])
        labels = list(dict.fromkeys([*map(str, present), *known]))
        codes = pd.Categorical(text, categories=labels).codes
        out = sorted([(label, np.flatnonzero(codes == k), {}) for k, label in enumerate(labels)],
                     key=lambda g: (-len(g[1]), g[0]))
    if missing.any():
        out.append((MISSING, np.flatnonzero(missing), {}))
    if len(out) > max_slices:
        raise InputError(f"slice column {column!r} has {len(out)} values, more than --max-slices "
                         f"{max_slices}; slice by a column with fewer values (or raise the limit)")
    return out


def _point(problem_type: str, metric: str, y: np.ndarray, out: Outputs) -> float | None:
    if len(y) < 2:
        return None
    if problem_type == "regression":
        if np.var(y) == 0:
            return None  # R² is undefined on a slice whose target is constant
        return regression_metrics(y, out.pred)[metric]
    return classification_metrics(y, out.proba)[metric]


def _subset(out: Outputs, rows: np.ndarray) -> Outputs:
    return Outputs(out.pred[rows], None if out.proba is None else out.proba[rows])


def slice_metrics(problem_type: str, metric: str, y: np.ndarray, outputs: list[Outputs],
                  rows: np.ndarray, *, samples: int, seed: int, max_rows: int, level: float,
                  n_classes: int) -> dict:
    """Candidate (and champion, and their paired delta) on the rows of one slice."""
    ys = y[rows]
    subsets = [_subset(out, rows) for out in outputs]
    points = [_point(problem_type, metric, ys, s) for s in subsets]
    names = ("candidate", "champion")
    if len(ys) < 2:
        return {names[i]: summarize(points[i], np.array([]), 1, 1, level) for i in range(len(outputs))}
    replicates, m = bootstrap_replicates(problem_type, ys, subsets, samples=samples, seed=seed,
                                         max_rows=max_rows, n_classes=n_classes)
    n = len(ys)
    found = {names[i]: summarize(points[i], replicates[i][metric], n, m, level) for i in range(len(outputs))}
    if len(outputs) == 2:
        delta = None if None in points else points[0] - points[1]
        found["delta"] = summarize(delta, replicates[0][metric] - replicates[1][metric], n, m, level)
    return found


def evaluate_slices(problem_type: str, metric: str, y: np.ndarray, outputs: list[Outputs],
                    columns: dict[str, pd.Series], features: dict[str, dict], options: SliceOptions,
                    *, samples: int, seed: int, max_rows: int, level: float, n_classes: int) -> dict:
    """The ``slices`` block of evaluation.json (layout in docs/CONTRACTS.md)."""
    report = []
    for c, (column, values) in enumerate(columns.items()):
        feature = features[column]
        entries = []
        for k, (label, rows, extra) in enumerate(groups(values, feature, options.bins, options.max_slices)):
            entry = {"value": label, "rows": int(len(rows)), "small": bool(len(rows) < options.min_rows), **extra}
            entry.update(slice_metrics(problem_type, metric, y, outputs, rows, samples=samples,
                                       seed=seed + 1000 * c + k, max_rows=max_rows, level=level,
                                       n_classes=n_classes))
            entries.append(entry)
        binned = feature["kind"] == "numeric" and any("lower" in e for e in entries)
        report.append({"column": column, "kind": feature["kind"],
                       "grouping": f"{options.bins} quantile bins" if binned else "values",
                       "slices": entries})
    return {"metric": metric, "min_rows": options.min_rows, "columns": report}


def slice_rows(block: dict | None) -> list[dict]:
    """Every slice of the block as one flat row (column, value, rows, small, values), for the
    report's table and chart."""
    rows = []
    for col in (block or {}).get("columns", []):
        for s in col["slices"]:
            rows.append({"column": col["column"], **s})
    return rows
