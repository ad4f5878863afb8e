"""Training job (SageMaker script mode): fit one sklearn Pipeline on the train channel.

The Pipeline holds everything from raw columns to prediction (derived features, imputation,
one-hot encoding, scaling, estimator), all fitted on the training rows only, so the endpoint and the
evaluation feed it raw rows. Hyperparameters arrive as the sagemaker-training toolkit passes
them: ``--name value`` (snake or kebab case), and ``-C value`` for a one-character name (the
toolkit's ``mapping.to_cmd_args`` rule); they are validated here; metrics are logged as ``[INFO] Training <metric>: <value>`` lines
for SageMaker MetricDefinitions.
"""

from __future__ import annotations

from failure import report_startup_errors  # stdlib only, so import errors below get reported

report_startup_errors(__name__, "training")

import json
import os
import platform
import sys
import time
from pathlib import Path

import catalogue
import csv_io
import numpy as np
import sklearn
import training_data
from failure import ArgumentParser, InputError, run_main
from features import DerivedFeatures, model_frame
from metrics import classification_metrics, label_codes, metric_order, regression_metrics
from model_io import save_model
from schema import Cleaned
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sm_env import env_path

HYPERPARAMETERS = sorted(catalogue.hyperparameter_schema())


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", "--model_dir", default=env_path("SM_MODEL_DIR", "model"))
    p.add_argument("--train", default=env_path("SM_CHANNEL_TRAIN", "input/data/train"))
    p.add_argument("--validation", default=env_path("SM_CHANNEL_VALIDATION"),
                   help="optional validation channel directory")
    p.add_argument("--problem-type", "--problem_type", default=None,
                   help="regression or classification (default: from the train channel's "
                        "schema.json, else regression)")
    p.add_argument("--target", default=None,
                   help="the label column (default: from the train channel's schema.json)")
    p.add_argument("--model", default=None, help=f"one of {sorted(catalogue.MODELS)}")
    for name in HYPERPARAMETERS:
        flags = {f"--{name}", f"--{name.replace('_', '-')}"}
        if len(name) == 1:  # the toolkit writes one-character names with one dash
            flags.add(f"-{name}")
        p.add_argument(*sorted(flags), dest=name, default=None, help="hyperparameter (string)")
    return p


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_hyperparameters(model: str, raw: dict[str, str | None]) -> dict:
    """Typed, range-checked hyperparameters for ``model`` (the catalogue's rules)."""
    given = {k: _unquote(v) for k, v in raw.items() if v is not None}
    try:
        return catalogue.parse_hyperparameters(model, given)
    except catalogue.HyperparameterError as exc:
        raise InputError(str(exc)) from None


def make_estimator(model: str, problem_type: str, hp: dict) -> object:
    return catalogue.MODELS[model].build(problem_type, hp)


def build_pipeline(numeric: list[str], categorical: list[str], estimator: object,
                   recipes: list[str] = (), derived: list[str] = ()) -> Pipeline:
    """Raw columns -> recipe columns (``derived``, numeric) -> imputed, scaled, one-hot -> model."""
    numeric_all = numeric + list(derived)
    steps = [("num", Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                               ("scale", StandardScaler())]), numeric_all)]
    if categorical:
        steps.append(("cat", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]), categorical))
    return Pipeline([("derive", DerivedFeatures(recipes=tuple(recipes))),
                     ("prepare", ColumnTransformer(steps, remainder="drop")),
                     ("model", estimator)])


def score(pipeline: Pipeline, data: Cleaned, target: str, problem_type: str, classes: list,
          positive: object = None) -> dict:
    X = model_frame(data.frame, data.numeric, data.categorical)
    if problem_type == "regression":
        return regression_metrics(data.frame[target].to_numpy(np.float64), pipeline.predict(X))
    order = metric_order(classes, positive)
    codes = label_codes(data.frame[target].to_numpy(), [classes[i] for i in order])
    known = codes >= 0
    return classification_metrics(codes[known], pipeline.predict_proba(X[known])[:, order])


def log_metrics(split: str, values: dict, problem_type: str) -> None:
    for name in catalogue.LOGGED_METRICS[problem_type]:
        value = values.get(name)
        if value is not None:
            print(f"[INFO] {split} {name}: {value:.4f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not args.model_dir:
        raise InputError("no model directory: pass --model-dir or set SM_MODEL_DIR")
    data = training_data.load(args.train, args.validation, args.target and _unquote(args.target),
                              args.problem_type and _unquote(args.problem_type))
    train, validation, schema = data.train, data.validation, data.schema
    args.target, args.problem_type = schema.target, schema.problem_type
    model = _unquote(args.model) if args.model else catalogue.DEFAULT_MODEL[args.problem_type]
    try:
        catalogue.model_spec(model, args.problem_type)
    except catalogue.HyperparameterError as exc:
        raise InputError(str(exc)) from None
    hp = parse_hyperparameters(model, {name: getattr(args, name) for name in HYPERPARAMETERS})

    y = train.frame[args.target]
    classes: list = sorted(y.unique().tolist()) if args.problem_type == "classification" else []
    pipeline = build_pipeline(train.numeric, train.categorical, make_estimator(model, args.problem_type, hp),
                              schema.feature_recipes, schema.derived_features)
    started = time.perf_counter()
    try:
        pipeline.fit(model_frame(train.frame, train.numeric, train.categorical), y.to_numpy())
    except ValueError as exc:
        raise InputError(f"model {model!r} could not be fitted on {args.train}: {exc}") from exc
    fit_seconds = time.perf_counter() - started
    positive = None
    if classes:
        classes = [c.item() if hasattr(c, "item") else c for c in pipeline.classes_]
        positive = schema.positive_class if len(classes) == 2 else None
        if len(classes) == 2 and positive is None:
            positive = classes[-1]  # the documented default rule (dataset_schema)
        schema.labels = classes

    results = {"training": score(pipeline, train, args.target, args.problem_type, classes, positive)}
    log_metrics("Training", results["training"], args.problem_type)
    if validation is not None:
        results["validation"] = score(pipeline, validation, args.target, args.problem_type, classes,
                                      positive)
        log_metrics("Validation", results["validation"], args.problem_type)

    metadata = {
        "schema_version": "1.0",
        "problem_type": args.problem_type, "target": args.target, "model": model,
        "hyperparameters": hp,
        "numeric_columns": train.numeric, "categorical_columns": train.categorical,
        "derived_features": schema.derived_features,
        "classes": classes, "positive_class": positive,
        "schema": schema.to_dict(),
        "metrics": results,
        "rows": {"train": len(train.frame), "train_dropped": dict(train.dropped),
                 "validation": len(validation.frame) if validation is not None else 0},
        "train_data_sha256": csv_io.sha256_files(data.train_files),
        "fit_seconds": round(fit_seconds, 3),
        "versions": {"python": platform.python_version(), "sklearn": sklearn.__version__,
                     "numpy": np.__version__},
        "training_job": os.environ.get("TRAINING_JOB_NAME"),
    }
    save_model(Path(args.model_dir), pipeline, metadata)
    print(f"[INFO] saved {model} pipeline to {args.model_dir} ({json.dumps(hp)})")


if __name__ == "__main__":
    sys.exit(run_main(main, "training"))
