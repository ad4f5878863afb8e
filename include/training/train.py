"""Training job (SageMaker script mode): fit one sklearn Pipeline on the train channel.

The Pipeline holds everything from raw columns to prediction (derived features, imputation,
one-hot encoding, scaling, estimator), all fitted on the training rows only, so the endpoint and the
evaluation feed it raw rows. Hyperparameters arrive as the sagemaker-training toolkit passes
them: ``--name value`` (snake or kebab case), and ``-C value`` for a one-character name (the
toolkit's ``mapping.to_cmd_args`` rule); they are validated here; metrics are logged as ``[INFO] Training <metric>: <value>`` lines
for SageMaker MetricDefinitions.
"""

from __future__ import annotations

import argparse
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
from derived import derived_feature_names
from failure import ArgumentParser, InputError, run_main
from features import DerivedFeatures, model_frame
from metrics import classification_metrics, label_codes, regression_metrics
from model_io import save_model
from schema import PROBLEM_TYPES, Cleaned, clean_frame
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
    p.add_argument("--problem-type", "--problem_type", default="regression")
    p.add_argument("--target", default="median_house_value")
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


def build_pipeline(numeric: list[str], categorical: list[str], estimator: object) -> Pipeline:
    numeric_all = numeric + derived_feature_names(numeric + categorical)
    steps = [("num", Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                               ("scale", StandardScaler())]), numeric_all)]
    if categorical:
        steps.append(("cat", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]), categorical))
    return Pipeline([("derive", DerivedFeatures()),
                     ("prepare", ColumnTransformer(steps, remainder="drop")),
                     ("model", estimator)])


def read_channel(directory: str, args: argparse.Namespace, categorical: list[str] | None,
                 min_rows: int) -> tuple[Cleaned, list[Path]]:
    files = csv_io.inspect_all(csv_io.find_csv_files(directory))
    usable = csv_io.data_files(files, directory)
    cleaned = clean_frame(csv_io.read_as_text(usable), target=args.target, problem_type=args.problem_type,
                          source=directory, categorical=categorical, min_rows=min_rows)
    return cleaned, [f.path for f in files]


def score(pipeline: Pipeline, data: Cleaned, target: str, problem_type: str, classes: list) -> dict:
    X = model_frame(data.frame, data.numeric, data.categorical)
    if problem_type == "regression":
        return regression_metrics(data.frame[target].to_numpy(np.float64), pipeline.predict(X))
    codes = label_codes(data.frame[target].to_numpy(), classes)
    known = codes >= 0
    return classification_metrics(codes[known], pipeline.predict_proba(X[known]))


def log_metrics(split: str, values: dict, problem_type: str) -> None:
    for name in catalogue.LOGGED_METRICS[problem_type]:
        value = values.get(name)
        if value is not None:
            print(f"[INFO] {split} {name}: {value:.4f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.problem_type, args.target = _unquote(args.problem_type), _unquote(args.target)
    if args.problem_type not in PROBLEM_TYPES:
        raise InputError(f"--problem-type must be one of {list(PROBLEM_TYPES)}, got {args.problem_type!r}")
    model = _unquote(args.model) if args.model else catalogue.DEFAULT_MODEL[args.problem_type]
    try:
        catalogue.model_spec(model, args.problem_type)
    except catalogue.HyperparameterError as exc:
        raise InputError(str(exc)) from None
    hp = parse_hyperparameters(model, {name: getattr(args, name) for name in HYPERPARAMETERS})
    if not args.model_dir:
        raise InputError("no model directory: pass --model-dir or set SM_MODEL_DIR")

    train, train_files = read_channel(args.train, args, None, min_rows=2)
    validation = None
    if args.validation and Path(args.validation).is_dir() and any(Path(args.validation).iterdir()):
        validation, _ = read_channel(args.validation, args, train.categorical, min_rows=1)
        if validation.features != train.features:
            raise InputError(f"validation columns {validation.features} differ from train's {train.features}")

    y = train.frame[args.target]
    classes: list = sorted(y.unique().tolist()) if args.problem_type == "classification" else []
    pipeline = build_pipeline(train.numeric, train.categorical, make_estimator(model, args.problem_type, hp))
    started = time.perf_counter()
    try:
        pipeline.fit(model_frame(train.frame, train.numeric, train.categorical), y.to_numpy())
    except ValueError as exc:
        raise InputError(f"model {model!r} could not be fitted on {args.train}: {exc}") from exc
    fit_seconds = time.perf_counter() - started
    if classes:
        classes = [c.item() if hasattr(c, "item") else c for c in pipeline.classes_]

    results = {"training": score(pipeline, train, args.target, args.problem_type, classes)}
    log_metrics("Training", results["training"], args.problem_type)
    if validation is not None:
        results["validation"] = score(pipeline, validation, args.target, args.problem_type, classes)
        log_metrics("Validation", results["validation"], args.problem_type)

    metadata = {
        "schema_version": "1.0",
        "problem_type": args.problem_type, "target": args.target, "model": model,
        "hyperparameters": hp,
        "numeric_columns": train.numeric, "categorical_columns": train.categorical,
        "derived_features": derived_feature_names(train.features),
        "classes": classes,
        "metrics": results,
        "rows": {"train": len(train.frame), "train_dropped": dict(train.dropped),
                 "validation": len(validation.frame) if validation is not None else 0},
        "train_data_sha256": csv_io.sha256_files(train_files),
        "fit_seconds": round(fit_seconds, 3),
        "versions": {"python": platform.python_version(), "sklearn": sklearn.__version__,
                     "numpy": np.__version__},
        "training_job": os.environ.get("TRAINING_JOB_NAME"),
    }
    save_model(Path(args.model_dir), pipeline, metadata)
    print(f"[INFO] saved {model} pipeline to {args.model_dir} ({json.dumps(hp)})")


if __name__ == "__main__":
    sys.exit(run_main(main, "training"))
