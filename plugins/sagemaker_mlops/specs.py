"""Pipeline specs: one small YAML file per model, each yielding one pipeline DAG.

A spec names what differs between models: the DAG id and schedule, the model package group,
the endpoint, the S3 prefix, bundled sample data for offline runs and the defaults of the
trigger form's Params. What stays the same for every model (bucket, role, region, connection)
remains in ``settings.py``.

Specs live in ``dags/pipelines/`` (shipped with the DAGs folder, which is what MWAA syncs) and,
for ad-hoc pipelines such as ``./dev run --data``, in the folder ``MLOPS_PIPELINES_DIR`` names.
A spec is validated with a JSON schema when the DAG files are parsed; the Param part of the
schema is the Params' own schemas, so the file and the trigger form cannot disagree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagemaker_mlops.settings import PROJECT_ROOT

SPEC_DIR = PROJECT_ROOT / "dags" / "pipelines"
EXTRA_DIR_ENV = "MLOPS_PIPELINES_DIR"
SPEC_SUFFIXES = (".yaml", ".yml")
# SageMaker's ModelPackageGroupName / EndpointName pattern (botocore service model)
SAGEMAKER_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"


class SpecError(ValueError):
    """An invalid spec; the message names the file and the field."""


def spec_schema() -> dict[str, Any]:
    """JSON schema of a spec file."""
    from sagemaker_mlops.params import pipeline_params

    params = {name: _plain_schema(p.schema) for name, p in pipeline_params().items()}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["model_package_group", "endpoint_name", "s3_prefix", "params"],
        "properties": {
            "dag_id": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,200}$"},
            "description": {"type": "string", "maxLength": 500},
            "schedule": {"type": ["string", "null"], "minLength": 1},
            "model_package_group": {"type": "string", "pattern": SAGEMAKER_NAME},
            "endpoint_name": {"type": "string", "pattern": SAGEMAKER_NAME},
            "s3_prefix": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"},
            "sample_data": {"type": "string", "pattern": r"\.csv(\.gz)?$"},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "params": {
                "type": "object",
                "additionalProperties": False,
                "required": ["problem_type", "target"],
                "properties": params,
            },
        },
    }


def _plain_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A Param's schema without the trigger form's presentation keys."""
    return {k: v for k, v in schema.items() if k not in {"title", "description", "section"}}


@dataclass(frozen=True)
class PipelineSpec:
    """One validated spec; ``name`` is the file name without its suffix."""

    name: str
    path: Path
    dag_id: str
    model_package_group: str
    endpoint_name: str
    s3_prefix: str
    params: dict[str, Any]
    schedule: str | None = None
    description: str = ""
    sample_data: Path | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


def _field(error: Any) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return path or "(top level)"


def load_spec(path: Path) -> PipelineSpec:
    """Read and validate one spec; raises SpecError naming the file and the field."""
    import jsonschema
    import yaml

    from sagemaker_mlops.run_options import ParamsError, parse_run_options

    where = _shown(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(f"{where}: not valid YAML{line}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
    errors = sorted(
        jsonschema.Draft202012Validator(spec_schema()).iter_errors(data),
        key=lambda e: list(map(str, e.absolute_path)),
    )
    if errors:
        error = errors[0]
        raise SpecError(f"{where}: field '{_field(error)}': {error.message}")
    try:
        parse_run_options(data["params"])
    except ParamsError as exc:
        raise SpecError(f"{where}: field 'params': {exc}") from None
    # not checked for existence: deployments (MWAA) ship the DAGs folder without include/data;
    # whoever uploads the sample (./dev run, the compose seed) says when it is missing
    sample = data.get("sample_data")
    sample_path = (PROJECT_ROOT / sample) if sample else None
    return PipelineSpec(
        name=path.stem,
        path=path,
        dag_id=data.get("dag_id", path.stem),
        model_package_group=data["model_package_group"],
        endpoint_name=data["endpoint_name"],
        s3_prefix=data["s3_prefix"],
        params=dict(data["params"]),
        schedule=data.get("schedule"),
        description=data.get("description", ""),
        sample_data=sample_path,
        tags=tuple(data.get("tags", ())),
    )


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def spec_dirs(environ: Mapping[str, str] | None = None, base: Path = SPEC_DIR) -> list[Path]:
    """``base`` (the DAG files pass their own ``pipelines/`` folder), then MLOPS_PIPELINES_DIR."""
    environ = os.environ if environ is None else environ
    dirs = [base]
    if environ.get(EXTRA_DIR_ENV):
        dirs.append(Path(environ[EXTRA_DIR_ENV]))
    return dirs


def spec_files(dirs: Iterable[Path]) -> list[Path]:
    """Spec files folder by folder (shipped specs first), by name within a folder."""
    return [p for d in dirs if d.is_dir() for p in sorted(d.iterdir()) if p.suffix in SPEC_SUFFIXES]


def load_specs(dirs: Iterable[Path] | None = None) -> tuple[list[PipelineSpec], list[str]]:
    """Every valid spec, and one message per invalid one (file and field named).

    Two specs may not share a DAG id, group, endpoint or S3 prefix: the second would overwrite
    the first's models, endpoint or data.
    """
    specs: list[PipelineSpec] = []
    problems: list[str] = []
    taken: dict[tuple[str, str], str] = {}
    for path in spec_files(spec_dirs() if dirs is None else dirs):
        try:
            spec = load_spec(path)
        except SpecError as exc:
            problems.append(str(exc))
            continue
        clash = None
        for key in ("dag_id", "model_package_group", "endpoint_name", "s3_prefix"):
            owner = taken.get((key, getattr(spec, key)))
            if owner:
                clash = f"{_shown(path)}: field '{key}': {getattr(spec, key)!r} is already used by {owner}"
                break
        if clash:
            problems.append(clash)
            continue
        for key in ("dag_id", "model_package_group", "endpoint_name", "s3_prefix"):
            taken[(key, getattr(spec, key))] = _shown(path)
        specs.append(spec)
    return specs, problems


def find_spec(name: str, dirs: Iterable[Path] | None = None) -> PipelineSpec:
    """The valid spec called ``name`` (file name without suffix); raises SpecError."""
    specs, problems = load_specs(dirs)
    for spec in specs:
        if spec.name == name:
            return spec
    for problem in problems:
        if re.search(rf"(^|/){re.escape(name)}\.ya?ml:", problem):
            raise SpecError(problem)
    known = ", ".join(s.name for s in specs) or "none"
    raise SpecError(f"no pipeline spec named {name!r} (known: {known})")
