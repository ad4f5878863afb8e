"""Point metrics for both problem types, named as in evaluation.json and the training log lines.

Predictions are passed as class *codes* (indices into ``classes``) plus per-class probabilities for
classification, so training, evaluation and the bootstrap agree on one label order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from catalogue import HIGHER_IS_BETTER, LOGGED_METRICS, METRIC_NAMES, PRIMARY_METRIC
from sklearn import metrics as skm

REGRESSION_METRICS = METRIC_NAMES["regression"]
CLASSIFICATION_METRICS = METRIC_NAMES["classification"]
LOG_METRICS = LOGGED_METRICS
__all__ = ["HIGHER_IS_BETTER", "PRIMARY_METRIC", "REGRESSION_METRICS", "CLASSIFICATION_METRICS",
           "LOG_METRICS", "regression_metrics", "classification_metrics", "confusion", "label_codes",
           "metric_order"]


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    mse = float(skm.mean_squared_error(y_true, y_pred))
    return {"r2_score": float(skm.r2_score(y_true, y_pred)), "rmse": float(np.sqrt(mse)),
            "mae": float(skm.mean_absolute_error(y_true, y_pred)), "mse": mse}


def auc_score(y_code: np.ndarray, proba: np.ndarray) -> float | None:
    """Binary AUC of the positive (second) class, or one-vs-rest macro AUC; None if undefined."""
    n_classes = proba.shape[1]
    if len(np.unique(y_code)) < 2:
        return None
    if n_classes == 2:
        return float(skm.roc_auc_score(y_code, proba[:, 1]))
    present = np.unique(y_code)
    if len(present) < n_classes:
        return None  # sklearn's OvR needs every class in y_true
    return float(skm.roc_auc_score(y_code, proba, multi_class="ovr", average="macro",
                                   labels=np.arange(n_classes)))


def classification_metrics(y_code: np.ndarray, proba: np.ndarray) -> dict[str, float | None]:
    n_classes = proba.shape[1]
    pred = proba.argmax(axis=1)
    if n_classes == 2:
        kw = {"labels": [0, 1], "pos_label": 1, "average": "binary", "zero_division": 0}
    else:
        kw = {"labels": np.arange(n_classes), "average": "macro", "zero_division": 0}
    return {
        "accuracy": float(skm.accuracy_score(y_code, pred)),
        "precision": float(skm.precision_score(y_code, pred, **kw)),
        "recall": float(skm.recall_score(y_code, pred, **kw)),
        "f1": float(skm.f1_score(y_code, pred, **kw)),
        "auc": auc_score(y_code, proba),
    }


def confusion(y_code: np.ndarray, pred_code: np.ndarray, classes: list) -> dict[str, dict[str, int]]:
    """SageMaker's layout: ``{"<actual>": {"<predicted>": count}}``."""
    matrix = skm.confusion_matrix(y_code, pred_code, labels=np.arange(len(classes)))
    return {str(a): {str(p): int(matrix[i, j]) for j, p in enumerate(classes)}
            for i, a in enumerate(classes)}


def metric_order(classes: list, positive: object = None) -> list[int]:
    """Indices of ``classes`` in the order the metrics use them: for two classes the positive one
    second (``pos_label=1`` here, and the bootstrap's "second class"), otherwise unchanged.

    The model's own order (``classes_``, sorted) stays as it is; only scoring reorders its columns.
    """
    if len(classes) == 2 and positive is not None and str(classes[0]) == str(positive):
        return [1, 0]
    return list(range(len(classes)))


def label_codes(labels: np.ndarray, classes: list) -> np.ndarray:
    """Index of each label in ``classes``; -1 for a label the model never saw."""
    values = pd.Series(labels)
    if all(isinstance(c, int | np.integer) for c in classes):
        numbers = pd.to_numeric(values, errors="coerce")
        text = numbers.where(numbers % 1 == 0).astype("Int64").astype(str)
    else:
        text = values.astype(str).str.strip()
    return pd.Categorical(text, categories=[str(c) for c in classes]).codes.astype(np.int64)
