"""Fixtures for the training tests: session-wide runs of preprocess and train on the bundled data.

The tests then read these outputs, so the suite exercises the real scripts without retraining per
test. Helpers live in ``training_support``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from training_support import (
    DATA,
    HOUSING_ARGS,
    Container,
    Trained,
    classification_data,
    prepare,
    tar_model,
)


@pytest.fixture
def container(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Container:
    return Container(tmp_path, monkeypatch)


@pytest.fixture(scope="session")
def housing() -> pd.DataFrame:
    return pd.read_csv(DATA)


@pytest.fixture(scope="session")
def regression_linear(tmp_path_factory) -> Trained:
    return prepare(tmp_path_factory.mktemp("reg-linear"), None, HOUSING_ARGS, [], "median_house_value")


@pytest.fixture(scope="session")
def regression_hgb(tmp_path_factory, regression_linear) -> Trained:
    root = tmp_path_factory.mktemp("reg-hgb")
    c = Container(root)
    channels = {"train": regression_linear.splits / "train",
                "validation": regression_linear.splits / "validation"}
    result = c.run("train.py", "--model", "hist_gradient_boosting", "--max_iter", "200",
                   "--learning-rate", "0.1", **c.training_env(channels))
    assert result.returncode == 0, result.stderr
    model_dir = c.opt_ml / "model"
    return Trained(regression_linear.splits, model_dir, tar_model(model_dir, root / "tarball").parent,
                   result.stdout, "median_house_value")


@pytest.fixture(scope="session")
def binary_logistic(tmp_path_factory, housing) -> Trained:
    common = ["--target", "expensive", "--problem-type", "classification"]
    return prepare(tmp_path_factory.mktemp("bin"), classification_data(housing, "binary"),
                   common + ["--feature-recipes", "california_ratios"], common, "expensive")


@pytest.fixture(scope="session")
def multiclass_forest(tmp_path_factory, housing) -> Trained:
    common = ["--target", "band", "--problem-type", "classification"]
    return prepare(tmp_path_factory.mktemp("multi"), classification_data(housing, "multiclass"),
                   common, common + ["--model", "random_forest", "--n-estimators", "30",
                                     "--min-samples-leaf", "5"], "band")
