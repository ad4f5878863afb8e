"""Processing job: raw CSVs -> validated, cleaned train / validation / test splits and a profile.

The splits keep the RAW columns (cleaned rows only) so the trained Pipeline accepts the same rows an
endpoint receives; derived features live in ``derived.py`` and are only profiled here. The split is
deterministic (seeded) and stratified on target quantile bins (regression) or the label
(classification). Given one shard of a multi-instance job it processes just that shard and names its
outputs after the host.
"""

from __future__ import annotations

from failure import report_startup_errors  # stdlib only, so import errors below get reported

report_startup_errors(__name__, "processing")

import json
import sys
from pathlib import Path

import csv_io
import numpy as np
import pandas as pd
from data_check_policy import THRESHOLDS
from data_checks import (
    add_threshold_options,
    profile_distributions,
    read_baseline,
    run_checks,
    write_result,
)
from dataset_schema import check_target, infer_schema, split_names, write_schema
from derived import RECIPES, derived_features
from failure import ArgumentParser, InputError, run_main
from profile_stats import column_stats, frame_stats
from schema import NA_TOKENS, PROBLEM_TYPES
from sm_env import opt_ml_dir, resource_config, shard_name

SPLITS = ("train", "validation", "test")


def parse_args(argv: list[str] | None) -> ArgumentParser:
    root = opt_ml_dir() / "processing"
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input-dir", default=str(root / "input" / "raw"),
                   help="directory searched recursively for *.csv / *.csv.gz")
    p.add_argument("--output-dir", default=str(root / "output"),
                   help="gets train/, validation/, test/ and profile/ subdirectories")
    p.add_argument("--target", required=True, help="the column to predict")
    p.add_argument("--problem-type", choices=PROBLEM_TYPES, default="regression")
    p.add_argument("--drop-columns", default="",
                   help="comma-separated columns that are not features (ids, leaks); every other "
                        "column except the target is one")
    p.add_argument("--numeric-columns", default="",
                   help="comma-separated columns to treat as numeric (default: inferred from values)")
    p.add_argument("--categorical-columns", default="",
                   help="comma-separated columns to treat as categories, e.g. codes written as "
                        "numbers (default: inferred; mostly non-numeric text is categorical)")
    p.add_argument("--feature-recipes", default="",
                   help=f"comma-separated derived-feature recipes to apply, of {sorted(RECIPES)}")
    p.add_argument("--positive-class", default=None,
                   help="the positive label of a binary target (default: the last label in sorted "
                        "order, e.g. 1 of 0/1, 'yes' of no/yes)")
    p.add_argument("--drop-capped-target", action="store_true",
                   help="drop rows whose regression target sits at the data's cap (its maximum, "
                        "when at least 0.5%% of rows share it); default keeps them and reports them")
    p.add_argument("--validation-fraction", type=float, default=0.15)
    p.add_argument("--test-fraction", type=float, default=0.15)
    p.add_argument("--stratify-bins", type=int, default=10,
                   help="quantile bins of a regression target used as split strata")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--min-rows", type=int, default=30, help="fewest usable rows to accept")
    p.add_argument("--baseline-profile", default=str(root / "input" / "baseline" / "profile.json"),
                   help="the champion's profile.json: data checks compare with it (absent: the "
                        "first model, checked against the data itself)")
    p.add_argument("--baseline-uri", default=None, help="where the baseline came from (recorded)")
    add_threshold_options(p)
    return p


def stratified_split(strata: np.ndarray, fractions: tuple[float, float], seed: int) -> np.ndarray:
    """Split code per row (0 train, 1 validation, 2 test): each stratum shuffled and cut by fraction."""
    rng = np.random.default_rng(seed)
    codes = np.zeros(len(strata), dtype=np.int8)
    val_frac, test_frac = fractions
    for stratum in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == stratum))
        n_test = int(round(len(rows) * test_frac))
        n_val = int(round(len(rows) * val_frac))
        codes[rows[:n_test]] = 2
        codes[rows[n_test:n_test + n_val]] = 1
    return codes


def split_strata(target: pd.Series, problem_type: str, bins: int) -> np.ndarray:
    if problem_type == "classification":
        return pd.factorize(target.astype(str), sort=True)[0]
    return pd.qcut(target.rank(method="first"), q=max(1, bins), labels=False).to_numpy()


def capped_target(target: pd.Series) -> dict:
    """Describes a censored regression target (many rows at exactly the maximum)."""
    top = float(target.max())
    at_top = int((target == top).sum())
    return {"max": top, "rows_at_max": at_top, "share_at_max": round(at_top / len(target), 6),
            "looks_capped": at_top >= max(2, 0.005 * len(target))}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv).parse_args(argv)
    for name in ("validation_fraction", "test_fraction"):
        if not 0 < getattr(args, name) < 0.5:
            raise InputError(f"--{name.replace('_', '-')} must be between 0 and 0.5, got {getattr(args, name)}")
    host, hosts = resource_config()
    input_dir = Path(args.input_dir)
    files = csv_io.inspect_all(csv_io.find_csv_files(input_dir))
    usable = csv_io.data_files(files, input_dir)
    columns = usable[0].columns
    declared_text = split_names(args.categorical_columns)
    labels = [args.target] if args.problem_type == "classification" else []
    text_columns = [c for c in declared_text + labels if c in columns]
    raw = csv_io.read_typed(usable, text_columns=text_columns, na_values=NA_TOKENS)
    cleaned, schema = infer_schema(
        raw, target=args.target, problem_type=args.problem_type, source=str(input_dir),
        drop=split_names(args.drop_columns), numeric=split_names(args.numeric_columns),
        categorical=declared_text, recipes=split_names(args.feature_recipes),
        positive_class=args.positive_class, min_rows=args.min_rows)
    frame = cleaned.frame
    dropped = dict(cleaned.dropped)
    target_info: dict
    if args.problem_type == "regression":
        target_info = capped_target(frame[args.target])
        if args.drop_capped_target and target_info["looks_capped"]:
            frame = frame[frame[args.target] < target_info["max"]].reset_index(drop=True)
            dropped["capped_target"] = target_info["rows_at_max"]
            if len(frame) < args.min_rows:
                raise InputError(f"only {len(frame)} rows left after dropping the capped target")
            check_target(frame[args.target], args.target, args.problem_type)
    else:
        target_info = {"classes": {str(k): int(v) for k, v in frame[args.target].value_counts().items()}}

    codes = stratified_split(split_strata(frame[args.target], args.problem_type, args.stratify_bins),
                             (args.validation_fraction, args.test_fraction), args.seed)
    counts = {name: int((codes == i).sum()) for i, name in enumerate(SPLITS)}
    if min(counts.values()) == 0:
        raise InputError(f"{len(frame)} rows are too few to fill train/validation/test ({counts}); "
                         "add rows or change the fractions")

    out_root = Path(args.output_dir)
    raw_order = [c for c in columns if c in schema.names or c == args.target]
    outputs = {}
    for i, name in enumerate(SPLITS):
        path = out_root / name / shard_name(name, ".csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        csv_io.write_csv(frame.loc[codes == i, raw_order], path)
        outputs[f"{name}/{path.name}"] = csv_io.sha256_file(path)
    write_schema(schema, out_root / "train" / shard_name("schema", ".json"))  # the training job reads the schema from its channel

    profile = {
        "schema_version": "1.0",
        "host": host, "hosts": hosts,
        "target": args.target, "problem_type": args.problem_type,
        "inputs": [{"file": str(f.path.relative_to(input_dir)), "sha256": csv_io.sha256_file(f.path),
                    "columns": len(f.columns), "skipped": f.problem} for f in files],
        "input_sha256": csv_io.sha256_files(f.path for f in files),
        "rows": {"read": int(len(raw)), "usable": int(len(frame)), "dropped": dropped,
                 "duplicates": int(frame.duplicated().sum()), **counts},
        "columns": frame_stats(frame[raw_order]),
        "derived_features": frame_stats(derived_features(frame, schema.derived_features)),
        "target_summary": {**column_stats(frame[args.target]), **target_info},
        "split": {"seed": args.seed, "validation_fraction": args.validation_fraction,
                  "test_fraction": args.test_fraction,
                  "stratify": ("label" if args.problem_type == "classification"
                               else f"target quantile bins ({args.stratify_bins})")},
        "numeric_columns": schema.numeric, "categorical_columns": schema.categorical,
        "schema": schema.to_dict(), "warnings": schema.warnings,
        "outputs": outputs,
        "distributions": profile_distributions(frame, schema.to_dict()),
    }
    profile_path = out_root / "profile" / shard_name("profile", ".json")
    profile_path.parent.mkdir(parents=True, exist_ok=True)
    profile_path.write_text(json.dumps(profile, indent=2, allow_nan=False))
    baseline_path = Path(args.baseline_profile)
    checks = run_checks(frame, schema.to_dict(), read_baseline(baseline_path),
                        {t.name: getattr(args, t.name) for t in THRESHOLDS},
                        args.baseline_uri or str(baseline_path))
    write_result(checks, out_root / "profile", shard_name("data_checks", ".json"))
    print(f"[INFO] {checks['summary']}\n{checks['table']}")
    for note in checks["notes"]:
        print(f"[INFO] {note}")
    for warning in schema.warnings:
        print(f"[WARN] {warning}")
    print(f"[INFO] rows read {len(raw)}, usable {len(frame)}, dropped {dropped or 0}; split {counts}")
    print(f"[INFO] wrote splits and {profile_path}")


if __name__ == "__main__":
    sys.exit(run_main(main, "processing"))
