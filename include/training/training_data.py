"""The training job's rows and schema: the schema preprocess wrote into the train channel, or one
inferred here with the same rules when train.py runs on a CSV of its own.

Reading the schema instead of guessing again keeps preprocess's decisions (declared kinds, dropped
id columns, recipes, positive class) in force for the model; the channel's columns must match it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import csv_io
from dataset_schema import DatasetSchema, infer_schema, read_schema_files
from failure import InputError
from schema import PROBLEM_TYPES, Cleaned, clean_frame


@dataclass
class TrainingData:
    train: Cleaned
    validation: Cleaned | None
    schema: DatasetSchema
    train_files: list[Path]


def _files(directory: str) -> list[csv_io.CsvFile]:
    return csv_io.data_files(csv_io.inspect_all(csv_io.find_csv_files(directory)), directory)


def resolve(schema: DatasetSchema | None, target: str | None, problem_type: str | None,
            directory: str) -> tuple[str, str]:
    """Target and problem type: the arguments, which must agree with the channel's schema."""
    if schema is not None:
        for name, given, recorded in (("--target", target, schema.target),
                                      ("--problem-type", problem_type, schema.problem_type)):
            if given and given != recorded:
                raise InputError(f"{name} {given!r} differs from {recorded!r} in {directory}'s "
                                 "schema.json (written by preprocess); run both with the same value")
        return schema.target, schema.problem_type
    if not target:
        raise InputError(f"no --target given and no schema.json in {directory}; pass --target "
                         "(preprocess.py writes schema.json into the train split)")
    problem_type = problem_type or "regression"
    if problem_type not in PROBLEM_TYPES:
        raise InputError(f"--problem-type must be one of {list(PROBLEM_TYPES)}, got {problem_type!r}")
    return target, problem_type


def _clean(directory: str, schema: DatasetSchema, min_rows: int) -> tuple[Cleaned, list[Path]]:
    files = _files(directory)
    columns = files[0].columns
    expected = set(schema.names) | {schema.target}
    extra = sorted(set(columns) - expected - {d["name"] for d in schema.dropped})
    missing = sorted(expected - set(columns))
    if extra or missing:
        raise InputError(f"{files[0].path.name} in {directory}: columns differ from the schema "
                         f"(missing {missing}, unexpected {extra}); rerun preprocess")
    raw = csv_io.read_as_text(files)[[c for c in columns if c in expected]]
    cleaned = clean_frame(raw, target=schema.target,
                          problem_type=schema.problem_type, source=directory,
                          categorical=schema.categorical, min_rows=min_rows)
    cleaned.numeric, cleaned.categorical = schema.numeric, schema.categorical
    return cleaned, [f.path for f in files]


def load(train_dir: str, validation_dir: str | None, target: str | None,
         problem_type: str | None) -> TrainingData:
    """Cleaned train (and validation) rows with the schema the model is trained on."""
    schema = read_schema_files(train_dir)
    target, problem_type = resolve(schema, target, problem_type, train_dir)
    if schema is None:
        files = _files(train_dir)
        train, schema = infer_schema(csv_io.read_as_text(files), target=target,
                                     problem_type=problem_type, source=train_dir)
        train_files = [f.path for f in files]
    else:
        train, train_files = _clean(train_dir, schema, min_rows=2)
    validation = None
    if validation_dir and Path(validation_dir).is_dir() and any(Path(validation_dir).iterdir()):
        validation, _ = _clean(validation_dir, schema, min_rows=1)
    return TrainingData(train, validation, schema, train_files)
