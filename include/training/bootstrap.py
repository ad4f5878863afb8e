"""Bootstrap confidence intervals for the evaluation metrics, bounded in memory and time.

Method. ``B`` replicates (default 1000, seeded). Each replicate draws ``m = min(n, max_rows)`` test
rows with replacement (index sampling). Replicates are processed in batches of ``b`` at once as
``(b, m)`` index arrays, so memory is ``O(b*m)`` whatever ``n`` is, and every metric is computed
vectorised from per-row sufficient statistics gathered by those indices:

* regression: per-row error ``e = y - yhat`` and ``y``; ``mse = mean(e^2)``, ``mae = mean(|e|)``,
  ``rmse = sqrt(mse)``, ``r2 = 1 - mse / var(y)`` on each replicate;
* classification: a per-replicate confusion matrix from one ``bincount`` of ``y*K + yhat``
  (accuracy, precision, recall, f1; binary uses the second class as positive, multiclass the macro
  mean over all classes), and AUC from Mann-Whitney rank sums (``scipy.stats.rankdata`` along the
  batch axis, ties averaged; multiclass one-vs-rest macro).

When ``m < n`` (large test sets) this is the m-out-of-n bootstrap: a replicate's deviation from the
full-data estimate is shrunk by ``sqrt(m/n)`` before taking the standard deviation and the
percentile interval, which for these smooth metrics gives the n-row sampling spread at a fixed cost.
Candidate and champion are scored on the *same* replicate indices, so the interval for
``candidate - champion`` is a paired bootstrap. Point values always come from all ``n`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Outputs:
    """One model's predictions on the test rows: values (regression) or class codes + probabilities."""

    pred: np.ndarray
    proba: np.ndarray | None = None


def _regression(y: np.ndarray, errors: list[np.ndarray], idx: np.ndarray) -> list[dict]:
    var_y = y[idx].var(axis=1)
    out = []
    for err in errors:
        e = err[idx]
        mse = np.einsum("ij,ij->i", e, e) / idx.shape[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(var_y > 0, 1.0 - mse / var_y, np.nan)
        out.append({"r2_score": r2, "rmse": np.sqrt(mse), "mae": np.abs(e).mean(axis=1), "mse": mse})
    return out


def _auc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata  # imported here: scipy.stats costs ~1 s and only AUC needs it

    ranks = rankdata(scores, axis=1)
    n_pos = positive.sum(axis=1).astype(np.float64)
    n_neg = positive.shape[1] - n_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = ((ranks * positive).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _classification(y: np.ndarray, models: list[Outputs], idx: np.ndarray, n_classes: int) -> list[dict]:
    b, m = idx.shape
    yb = y[idx]
    offsets = (np.arange(b) * n_classes * n_classes)[:, None]
    out = []
    for model in models:
        codes = offsets + yb * n_classes + model.pred[idx]
        conf = np.bincount(codes.ravel(), minlength=b * n_classes * n_classes).reshape(b, n_classes, n_classes)
        tp = np.diagonal(conf, axis1=1, axis2=2).astype(np.float64)
        actual, predicted = conf.sum(axis=2), conf.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(predicted > 0, tp / predicted, 0.0)
            recall = np.where(actual > 0, tp / actual, 0.0)
            f1 = np.where(actual + predicted > 0, 2 * tp / (actual + predicted), 0.0)
        if n_classes == 2:
            precision, recall, f1 = precision[:, 1], recall[:, 1], f1[:, 1]
            auc = _auc(model.proba[idx, 1], yb == 1)
        else:
            precision, recall, f1 = precision.mean(1), recall.mean(1), f1.mean(1)
            auc = np.mean([_auc(model.proba[idx, k], yb == k) for k in range(n_classes)], axis=0)
        out.append({"accuracy": tp.sum(axis=1) / m, "precision": precision, "recall": recall,
                    "f1": f1, "auc": auc})
    return out


def bootstrap_replicates(problem_type: str, y: np.ndarray, models: list[Outputs], *, samples: int,
                         seed: int, max_rows: int, n_classes: int = 0,
                         batch_cells: int = 2_000_000) -> tuple[list[dict[str, np.ndarray]], int]:
    """Per model, metric -> ``samples`` replicate values; also returns ``m`` (rows per replicate)."""
    n = len(y)
    m = min(n, max_rows)
    rng = np.random.default_rng(seed)
    batch = max(1, batch_cells // m)
    errors = [y - model.pred for model in models] if problem_type == "regression" else []
    parts: list[list[dict]] = []
    done = 0
    while done < samples:
        b = min(batch, samples - done)
        idx = rng.integers(0, n, size=(b, m))
        if problem_type == "regression":
            parts.append(_regression(y, errors, idx))
        else:
            parts.append(_classification(y, models, idx, n_classes))
        done += b
    merged = [{name: np.concatenate([p[i][name] for p in parts]) for name in parts[0][i]}
              for i in range(len(models))]
    return merged, m


def summarize(point: float | None, replicates: np.ndarray, n: int, m: int, level: float) -> dict:
    """``{value, standard_deviation, confidence_interval}`` with m-out-of-n rescaling."""
    finite = replicates[np.isfinite(replicates)]
    if point is None or not np.isfinite(point) or finite.size < 2:
        return {"value": None if point is None or not np.isfinite(point) else float(point),
                "standard_deviation": None, "confidence_interval": None}
    scale = np.sqrt(m / n)
    adjusted = point + scale * (finite - point)
    alpha = (1 - level) / 2
    lower, upper = np.quantile(adjusted, [alpha, 1 - alpha])
    return {"value": float(point), "standard_deviation": float(np.std(adjusted, ddof=1)),
            "confidence_interval": {"lower": float(lower), "upper": float(upper), "level": level}}
