"""The vectorised bootstrap reproduces sklearn.metrics on the very rows each replicate drew."""

from __future__ import annotations

import numpy as np
import pytest
from bootstrap import Outputs, bootstrap_replicates, summarize
from metrics import classification_metrics, regression_metrics


def _first_replicate_rows(seed: int, n: int, m: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(1, m))[0]


def test_regression_replicates_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(200_000, 80_000, 3000)
    pred = y + rng.normal(0, 40_000, 3000)
    reps, m = bootstrap_replicates("regression", y, [Outputs(pred)], samples=5, seed=3, max_rows=10_000)
    assert m == 3000
    rows = _first_replicate_rows(3, 3000, 3000)
    expected = regression_metrics(y[rows], pred[rows])
    for name, value in expected.items():
        assert reps[0][name][0] == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classification_replicates_match_sklearn(n_classes: int) -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, n_classes, 2000)
    proba = rng.dirichlet(np.ones(n_classes), 2000)
    proba[np.arange(2000), y] += 0.4
    proba /= proba.sum(axis=1, keepdims=True)
    reps, _ = bootstrap_replicates("classification", y, [Outputs(proba.argmax(1), proba)], samples=3,
                                   seed=5, max_rows=10_000, n_classes=n_classes)
    rows = _first_replicate_rows(5, 2000, 2000)
    for name, value in classification_metrics(y[rows], proba[rows]).items():
        assert reps[0][name][0] == pytest.approx(value, rel=1e-9), name


def test_m_out_of_n_matches_the_full_bootstrap_spread() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=20_000)
    pred = y + rng.normal(scale=0.7, size=20_000)
    point = regression_metrics(y, pred)["r2_score"]
    full, m_full = bootstrap_replicates("regression", y, [Outputs(pred)], samples=400, seed=1, max_rows=20_000)
    sub, m_sub = bootstrap_replicates("regression", y, [Outputs(pred)], samples=400, seed=1, max_rows=2_000)
    sd_full = summarize(point, full[0]["r2_score"], 20_000, m_full, 0.95)["standard_deviation"]
    sd_sub = summarize(point, sub[0]["r2_score"], 20_000, m_sub, 0.95)["standard_deviation"]
    assert m_sub == 2_000
    assert sd_sub == pytest.approx(sd_full, rel=0.2)


def test_paired_delta_is_tighter_than_unpaired() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(size=5000)
    a = y + rng.normal(scale=0.5, size=5000)
    b = a + rng.normal(scale=0.1, size=5000)
    reps, m = bootstrap_replicates("regression", y, [Outputs(a), Outputs(b)], samples=300, seed=0, max_rows=5000)
    pa, pb = regression_metrics(y, a)["r2_score"], regression_metrics(y, b)["r2_score"]
    delta = summarize(pa - pb, reps[0]["r2_score"] - reps[1]["r2_score"], 5000, m, 0.95)
    single = summarize(pa, reps[0]["r2_score"], 5000, m, 0.95)
    assert delta["standard_deviation"] < single["standard_deviation"] / 3
    assert delta["confidence_interval"]["lower"] > 0  # a is really better than its noisier copy


def test_undefined_metric_summarises_to_nulls() -> None:
    assert summarize(None, np.array([np.nan, np.nan]), 10, 10, 0.95) == {
        "value": None, "standard_deviation": None, "confidence_interval": None}
