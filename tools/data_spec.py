"""A pipeline spec for a CSV a person brings (``./dev run --data PATH --target COL``).

The spec is written as a YAML file into a folder the DAG files read through
``MLOPS_PIPELINES_DIR``, so the run goes through exactly the DAG a shipped spec would get, and
validated the same way. Only the header and a sample of the target column are read here: the
schema itself (numeric / categorical / id columns) is inferred by preprocess inside the job.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from itertools import islice
from pathlib import Path

import yaml
from sagemaker_mlops.specs import PipelineSpec, SpecError, load_spec

from include.training.catalogue import DEFAULT_MODEL, PROBLEM_TYPES

SAMPLE_ROWS = 2000


class DataError(ValueError):
    """The file cannot be used as given; the message says what to change."""


def pipeline_name(path: Path) -> str:
    """``~/Downloads/Bank Churn.csv.gz`` -> ``bank_churn``."""
    stem = re.sub(r"\.csv(\.gz)?$", "", path.name, flags=re.IGNORECASE)
    name = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
    return name or "my_data"


def _open_text(path: Path) -> io.TextIOBase:
    raw = path.open("rb")
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8-sig", newline="")
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def read_target_sample(path: Path, target: str) -> list[str]:
    """The header check and up to SAMPLE_ROWS values of the target column."""
    if not path.is_file():
        raise DataError(f"--data {path}: no such file")
    if not re.search(r"\.csv(\.gz)?$", path.name, flags=re.IGNORECASE):
        raise DataError(f"--data {path}: expected a .csv or .csv.gz file")
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            header = [c.strip() for c in next(reader, [])]
            if target not in header:
                raise DataError(
                    f"--target {target!r} is not a column of {path.name}; its columns are "
                    f"{', '.join(header[:30])}{' ...' if len(header) > 30 else ''}"
                )
            index = header.index(target)
            return [row[index].strip() for row in islice(reader, SAMPLE_ROWS) if len(row) > index]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"--data {path}: cannot be read as CSV: {exc}") from None


def guess_problem_type(values: list[str]) -> str:
    """Classification when the target holds text labels or few distinct integers."""
    present = [v for v in values if v]
    try:
        numbers = [float(v) for v in present]
    except ValueError:
        return "classification"
    distinct = set(numbers)
    if all(n.is_integer() for n in distinct) and len(distinct) <= 10:
        return "classification"
    return "regression"


def write_spec(
    data: Path, target: str, problem_type: str | None, folder: Path
) -> tuple[PipelineSpec, str]:
    """Write and validate the spec; return it and how the problem type was chosen."""
    values = read_target_sample(data, target)
    if problem_type is None:
        problem_type, how = guess_problem_type(values), "inferred from the target's values"
    else:
        how = "given"
    if problem_type not in PROBLEM_TYPES:
        raise DataError(f"--problem-type must be one of {', '.join(PROBLEM_TYPES)}")
    name = pipeline_name(data)
    slug = name.replace("_", "-")[:63].strip("-") or "my-data"
    spec = {
        "dag_id": name,
        "description": f"{data.name}: predict {target} ({problem_type}), spec written by ./dev run",
        "schedule": None,
        "model_package_group": slug,
        "endpoint_name": slug,
        "s3_prefix": f"byod/{slug}",
        "sample_data": str(data.resolve()),
        "params": {"problem_type": problem_type, "target": target,
                   "model": DEFAULT_MODEL[problem_type]},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    try:
        return load_spec(path), how
    except SpecError as exc:
        raise DataError(str(exc)) from None
