"""Processing job ("the evaluation task"): score the candidate (and champion) on the test split.

Writes ``evaluation.json`` (SageMaker model-quality layout, schema 1.0, see docs/CONTRACTS.md),
a self-contained ``report.html`` with inline SVG charts. Target, problem type and feature columns come from
the candidate's ``model_metadata.json``, so evaluation always agrees with training.

Built for large test sets: CSVs are streamed in chunks with explicit dtypes (float64 features,
as the endpoint parses them, and categorical text), each chunk is predicted and only ``y`` / predictions are kept; bootstrap
intervals use bounded-memory batched index resampling (method in ``bootstrap.py``); charts use a
fixed sample of points. With ``--slice-columns`` the primary metric is also reported per value of
those columns (``slices.py``), so a model that is poor for one group cannot hide in the average.
"""

from __future__ import annotations

from failure import report_startup_errors  # stdlib only, so import errors below get reported

report_startup_errors(__name__, "processing")

import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import catalogue
import csv_io
import numpy as np
import pandas as pd
from bootstrap import Outputs, bootstrap_replicates, summarize
from data_checks import read_result
from dataset_schema import split_names
from failure import ArgumentParser, InputError, run_main
from features import model_frame
from metrics import (
    CLASSIFICATION_METRICS,
    PRIMARY_METRIC,
    REGRESSION_METRICS,
    classification_metrics,
    confusion,
    label_codes,
    metric_order,
    regression_metrics,
)
from model_io import LoadedModel, find_tarball, load_model_tarball
from pandas.api.types import union_categoricals
from report import classification_charts, regression_charts, write_report
from slices import SliceOptions, column_kinds, evaluate_slices
from sm_env import opt_ml_dir

SAMPLE_ROWS = 5


def build_parser() -> ArgumentParser:
    root = opt_ml_dir() / "processing"
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", default=str(root / "model"), help="holds the candidate model.tar.gz")
    p.add_argument("--test-dir", default=str(root / "test"), help="test split CSVs (raw columns)")
    p.add_argument("--champion-dir", default=str(root / "champion"),
                   help="champion model.tar.gz; missing or empty directory = no champion")
    p.add_argument("--champion-model-uri", default=None, help="recorded as champion.model_uri")
    p.add_argument("--data-checks", default=str(root / "data_checks" / "data_checks.json"),
                   help="preprocess's data_checks.json, shown in the report (absent: left out)")
    p.add_argument("--output-dir", default=str(root / "evaluation"))
    p.add_argument("--primary-metric", default=None, help="default: r2_score / f1")
    p.add_argument("--bootstrap-samples", type=int, default=1000)
    p.add_argument("--bootstrap-seed", type=int, default=42)
    p.add_argument("--bootstrap-max-rows", type=int, default=50_000,
                   help="rows drawn per replicate; above it the m-out-of-n bootstrap is used")
    p.add_argument("--confidence-level", type=float, default=0.95)
    p.add_argument("--chunk-rows", type=int, default=500_000,
                   help="rows read and predicted at once (bounds memory: ~0.5 GiB peak at 500k)")
    p.add_argument("--plot-points", type=int, default=4000)
    p.add_argument("--slice-columns", default="",
                   help="comma-separated feature columns: report the primary metric per value "
                        "(numeric columns in quantile bins), e.g. ocean_proximity")
    p.add_argument("--slice-min-rows", type=int, default=30,
                   help="slices with fewer test rows are reported and flagged small, not judged")
    p.add_argument("--slice-bins", type=int, default=4,
                   help="quantile bins of a numeric slice column with more distinct values")
    p.add_argument("--max-slices", type=int, default=50,
                   help="most slices one column may have (more is an error naming the column)")
    return p


def metrics_key(problem_type: str, n_classes: int) -> str:
    return catalogue.metrics_block_name(problem_type, n_classes)


def _json_value(value: object) -> object:
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return None if value is pd.NA else value


def scoring_classes(model: LoadedModel) -> tuple[list, list[int]]:
    """The model's classes in scoring order (binary: the positive class second) and the column
    order that puts its ``predict_proba`` in that order (``metrics.metric_order``)."""
    classes = model.metadata.get("classes") or []
    order = metric_order(classes, model.positive_class)
    return [classes[i] for i in order], order


def predict(model: LoadedModel, frame: pd.DataFrame, order: list[int] | None = None) -> Outputs:
    """Predictions; class probabilities in ``order`` (the candidate's scoring order)."""
    X = model_frame(frame, model.metadata["numeric_columns"], model.metadata["categorical_columns"])
    if model.metadata["problem_type"] == "regression":
        return Outputs(np.asarray(model.pipeline.predict(X), dtype=np.float64))
    proba = np.asarray(model.pipeline.predict_proba(X), dtype=np.float64)
    if order is not None:
        proba = proba[:, order]
    return Outputs(proba.argmax(axis=1), proba)


def load_check(model: LoadedModel, first_file: Path, order: list[int]) -> tuple[dict, dict]:
    """Load-and-predict on real rows read as an endpoint would (full precision); also the samples."""
    text = dict.fromkeys(model.metadata["categorical_columns"], str)
    rows = pd.read_csv(first_file, nrows=SAMPLE_ROWS, usecols=model.features, dtype=text)[model.features]
    started = time.perf_counter()
    out = predict(model, rows, order)
    classes = [(model.metadata.get("classes") or [])[i] for i in order]
    problems = []
    if out.pred.shape != (len(rows),):
        problems.append(f"prediction shape {out.pred.shape}, expected ({len(rows)},)")
    if model.metadata["problem_type"] == "regression":
        if not np.all(np.isfinite(out.pred)):
            problems.append("non-finite predictions")
        predictions = [float(v) for v in out.pred]
    else:
        if out.proba.shape != (len(rows), len(classes)) or not np.allclose(out.proba.sum(axis=1), 1, atol=1e-6):
            problems.append(f"class probabilities of shape {out.proba.shape} do not sum to 1 over {len(classes)} classes")
        predictions = [classes[i] for i in out.pred]
    if problems:
        raise InputError(f"load-and-predict check failed for {model.source}: {'; '.join(problems)}")
    check = {"passed": True, "rows": len(rows),
             "message": f"loaded {model.source} and predicted {len(rows)} real test rows "
                        f"({'finite values' if not classes else 'valid class probabilities'}, "
                        f"{(time.perf_counter() - started) * 1000:.0f} ms)"}
    samples = {"columns": model.features,
               "rows": [[_json_value(v) for v in row] for row in rows.astype(object).itertuples(index=False)],
               "predictions": predictions}
    return check, samples


def stream_test(files: list[Path], models: list[LoadedModel], chunk_rows: int,
                keep: Sequence[str] = ()) -> tuple[np.ndarray, list[Outputs], dict, dict[str, pd.Series]]:
    """Read the test CSVs chunk by chunk, predict each chunk with every model, keep y and outputs
    (and the values of the ``keep`` columns, the slice columns)."""
    meta = models[0].metadata
    target, problem_type = meta["target"], meta["problem_type"]
    classes, order = scoring_classes(models[0])
    numeric = {c for m in models for c in m.metadata["numeric_columns"]}
    categorical = {c for m in models for c in m.metadata["categorical_columns"]}
    # float64, not float32: rounding a value across a tree split threshold changes the prediction
    # (measured: test R² of a boosted model moved by 0.003), and chunks keep memory bounded anyway.
    dtypes = {**{c: np.float64 for c in numeric}, **{c: "category" for c in categorical},
              target: np.float64 if problem_type == "regression" else str}
    ys, outs, kept = [], [[] for _ in models], {c: [] for c in keep}
    dropped = {"missing_target": 0, "unknown_label": 0}
    for path in files:
        try:
            reader = pd.read_csv(path, usecols=list(dtypes), dtype=dtypes, chunksize=chunk_rows)
            for chunk in reader:
                if problem_type == "regression":
                    y = chunk[target].to_numpy(np.float64)
                    keep = np.isfinite(y)
                    dropped["missing_target"] += int((~keep).sum())
                else:
                    missing = chunk[target].isna().to_numpy()
                    y = label_codes(chunk[target].to_numpy(), classes)
                    keep = y >= 0
                    dropped["missing_target"] += int(missing.sum())
                    dropped["unknown_label"] += int((~keep & ~missing).sum())
                if not keep.all():
                    chunk, y = chunk[keep], y[keep]
                ys.append(y)
                for column, parts in kept.items():
                    parts.append(chunk[column].reset_index(drop=True))
                for i, model in enumerate(models):
                    outs[i].append(predict(model, chunk, order))
        except ValueError as exc:
            raise InputError(f"{path.name}: cannot read test rows with the model's schema "
                             f"({' '.join(str(exc).split())[:300]})") from exc
    y_all = np.concatenate(ys) if ys else np.array([])
    if len(y_all) < 2:
        raise InputError(f"test data has {len(y_all)} usable row(s) (dropped {dropped}); need at least 2")
    merged = [Outputs(np.concatenate([o.pred for o in parts]),
                      None if parts[0].proba is None else np.concatenate([o.proba for o in parts]))
              for parts in outs]
    columns = {c: _concat(parts) for c, parts in kept.items()}
    return y_all, merged, dropped, columns


def _concat(parts: list[pd.Series]) -> pd.Series:
    """Chunks of one column as one Series (category chunks may know different categories)."""
    if parts and isinstance(parts[0].dtype, pd.CategoricalDtype):
        return pd.Series(union_categoricals(parts))
    return pd.concat(parts, ignore_index=True) if parts else pd.Series(dtype=object)


def point_metrics(problem_type: str, y: np.ndarray, out: Outputs) -> dict:
    if problem_type == "regression":
        return regression_metrics(y, out.pred)
    return classification_metrics(y, out.proba)


def load_champion(directory: Path, candidate: LoadedModel, workdir: Path) -> LoadedModel | None:
    if find_tarball(directory) is None:
        return None
    try:
        champion = load_model_tarball(directory, workdir)
    except InputError as exc:
        raise InputError(f"champion artifact unusable: {exc}; fix it or run without --champion-dir") from exc
    for key in ("problem_type", "target"):
        if champion.metadata[key] != candidate.metadata[key]:
            raise InputError(f"champion {key} {champion.metadata[key]!r} differs from the candidate's "
                             f"{candidate.metadata[key]!r}; they cannot be compared")
    if candidate.metadata["problem_type"] == "classification" and \
            [str(c) for c in champion.metadata["classes"]] != [str(c) for c in candidate.metadata["classes"]]:
        raise InputError(f"champion classes {champion.metadata['classes']} differ from the candidate's "
                         f"{candidate.metadata['classes']}")
    return champion


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.bootstrap_samples < 2 or args.chunk_rows < 1 or args.bootstrap_max_rows < 2:
        raise InputError("--bootstrap-samples and --bootstrap-max-rows must be >= 2 and --chunk-rows >= 1")
    if args.slice_min_rows < 1 or args.slice_bins < 2 or args.max_slices < 1:
        raise InputError("--slice-min-rows and --max-slices must be >= 1 and --slice-bins >= 2")
    if not 0 < args.confidence_level < 1:
        raise InputError(f"--confidence-level must be between 0 and 1, got {args.confidence_level}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="evaluate-") as workdir:  # models are in memory after
        candidate = load_model_tarball(Path(args.model_dir), Path(workdir))
        champion = load_champion(Path(args.champion_dir), candidate, Path(workdir))
    meta = candidate.metadata
    problem_type, target = meta["problem_type"], meta["target"]
    classes, order = scoring_classes(candidate)
    names = REGRESSION_METRICS if problem_type == "regression" else CLASSIFICATION_METRICS
    primary = args.primary_metric or PRIMARY_METRIC[problem_type]
    if primary not in names:
        raise InputError(f"--primary-metric {primary!r} is not a {problem_type} metric ({list(names)})")

    test_dir = Path(args.test_dir)
    files = csv_io.data_files(csv_io.inspect_all(csv_io.find_csv_files(test_dir)), test_dir)
    needed = set(candidate.features) | {target} | (set(champion.features) if champion else set())
    missing = sorted(needed - set(files[0].columns))
    if missing:
        raise InputError(f"{files[0].path.name}: test data lacks column(s) {missing} the model needs")
    paths = [f.path for f in files]
    check, samples = load_check(candidate, paths[0], order)
    if champion:
        load_check(champion, paths[0], order)

    models = [candidate] + ([champion] if champion else [])
    slicing = SliceOptions(tuple(split_names(args.slice_columns)), args.slice_min_rows,
                           args.slice_bins, args.max_slices)
    slice_features = column_kinds(candidate.schema, slicing.columns, target)
    y, outputs, dropped, slice_values = stream_test(paths, models, args.chunk_rows, slicing.columns)
    predicted_at = time.perf_counter()
    points = [point_metrics(problem_type, y, out) for out in outputs]
    replicates, m = bootstrap_replicates(problem_type, y, outputs, samples=args.bootstrap_samples,
                                         seed=args.bootstrap_seed, max_rows=args.bootstrap_max_rows,
                                         n_classes=len(classes))
    n, level = len(y), args.confidence_level
    key = metrics_key(problem_type, len(classes))

    def block(i: int) -> dict:
        out = {name: summarize(points[i][name], replicates[i][name], n, m, level) for name in names}
        if problem_type == "classification":
            out["confusion_matrix"] = confusion(y, outputs[i].pred, classes)
        return out

    champion_block = None
    if champion:
        p_c, p_ch = points[0][primary], points[1][primary]
        delta_point = None if p_c is None or p_ch is None else p_c - p_ch
        delta = summarize(delta_point, replicates[0][primary] - replicates[1][primary], n, m, level)
        champion_block = {"model_uri": args.champion_model_uri or champion.source, key: block(1),
                          "delta": {"metric": primary, **delta}}

    slice_block = None
    if slicing.columns:
        slice_block = evaluate_slices(problem_type, primary, y, outputs, slice_values, slice_features,
                                      slicing, samples=args.bootstrap_samples, seed=args.bootstrap_seed,
                                      max_rows=args.bootstrap_max_rows, level=level, n_classes=len(classes))

    rng = np.random.default_rng(args.bootstrap_seed)
    sample = np.sort(rng.choice(n, size=min(n, args.plot_points), replace=False))
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    evaluation = {
        "schema_version": "1.0",
        "problem_type": problem_type, "target": target, "primary_metric": primary,
        "positive_class": candidate.positive_class,
        "schema": candidate.schema,
        key: block(0),
        "champion": champion_block,
        "slices": slice_block,
        "data_checks": read_result(Path(args.data_checks)),
        "load_check": check,
        "dataset": {"test_rows": int(n), "test_sha256": csv_io.sha256_files(paths),
                    "files": [str(p.relative_to(test_dir)) for p in paths],
                    "columns": candidate.features, "dropped_rows": dropped},
        "sample_predictions": samples,
        "bootstrap": {"samples": args.bootstrap_samples, "seed": args.bootstrap_seed, "level": level,
                      "rows_per_replicate": int(m),
                      "method": "index resampling" + (" (m-out-of-n, sqrt(m/n) scaled)" if m < n else "")},
        "candidate": {"model": meta.get("model"), "hyperparameters": meta.get("hyperparameters"),
                      "training_job": meta.get("training_job")},
    }
    labels = {"candidate": 0} | ({"champion": 1} if champion else {})
    if problem_type == "regression":
        charts = regression_charts(y, {k: outputs[i].pred for k, i in labels.items()}, sample)
    else:
        charts = classification_charts(y, {k: outputs[i].proba for k, i in labels.items()}, classes,
                                       evaluation[key]["confusion_matrix"], sample)
    (out_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=2, allow_nan=False))
    write_report(evaluation, charts, out_dir)
    value = evaluation[key][primary]["value"]
    print(f"[INFO] {n} test rows; candidate {primary}: {value}"
          + (f"; champion {champion_block[key][primary]['value']}" if champion_block else ""))
    print(f"[INFO] predict {predicted_at - started:.2f}s, metrics+bootstrap+plots "
          f"{time.perf_counter() - predicted_at:.2f}s; wrote {out_dir / 'evaluation.json'}")


if __name__ == "__main__":
    sys.exit(run_main(main, "processing"))
