"""Builders of evaluation.json documents in the layout of docs/CONTRACTS.md."""

from __future__ import annotations

from typing import Any

import pytest

BLOCK = {
    "regression": "regression_metrics",
    "binary": "binary_classification_metrics",
    "multiclass": "multiclass_classification_metrics",
}


def metric(value: float, lower: float | None = None, upper: float | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"value": value, "standard_deviation": 0.01}
    if lower is not None:
        entry["confidence_interval"] = {"lower": lower, "upper": upper, "level": 0.95}
    return entry


def build_evaluation(
    metrics: dict[str, dict[str, Any]],
    kind: str = "regression",
    champion: dict[str, dict[str, Any]] | None = None,
    delta: dict[str, Any] | None = None,
    load_passed: bool = True,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": "1.0",
        "problem_type": "regression" if kind == "regression" else "classification",
        "primary_metric": "r2_score" if kind == "regression" else "f1",
        BLOCK[kind]: metrics,
        "champion": None,
        "load_check": {"passed": load_passed, "rows": 5, "message": "predicted 5 rows"},
        "sample_predictions": {"columns": ["a"], "rows": [[1.0]], "predictions": [2.0]},
    }
    if champion is not None:
        doc["champion"] = {"model_uri": "s3://b/champion/model.tar.gz", BLOCK[kind]: champion}
        doc["champion"]["delta"] = delta
    return doc


@pytest.fixture
def evaluation():
    return build_evaluation


@pytest.fixture(name="metric")
def metric_fixture():
    return metric
