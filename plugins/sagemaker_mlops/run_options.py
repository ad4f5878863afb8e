"""Per-run options: the trigger form's values checked against each other and typed.

JSON-schema types, enums and bounds (``params.py``) reject bad single values when a run is
triggered; ``parse_run_options`` then checks what a schema cannot (a model that does not fit the
problem type, thresholds on metrics of the other problem type, hyperparameters the model lacks)
and is the first task of the pipeline, so a bad combination fails before any SageMaker job starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from include.training.catalogue import HyperparameterError, model_spec, parse_hyperparameters
from sagemaker_mlops.data_check_options import DataCheckOptions, data_check_options
from sagemaker_mlops.gate_policy import METRICS_BY_PROBLEM, GatePolicy
from sagemaker_mlops.params import APPROVAL_MODES, DEFAULTS, SERVERLESS_MEMORY_MB
from sagemaker_mlops.slice_options import slice_columns, slice_rules


class ParamsError(ValueError):
    """A combination of run parameters that cannot work; the message says which and why."""


@dataclass(frozen=True)
class DataOptions:
    """How preprocess reads the raw data; empty values mean "infer from the data"."""

    drop_columns: tuple[str, ...] = ()
    categorical_columns: tuple[str, ...] | None = None
    numeric_columns: tuple[str, ...] | None = None
    positive_class: str | None = None
    feature_recipes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunOptions:
    """Validated per-run options."""

    problem_type: str
    target: str
    model: str
    hyperparameters: dict[str, int | float | None]
    gate: GatePolicy
    approval_status: str
    serverless_memory_mb: int
    serverless_max_concurrency: int
    approval_timeout_hours: float = DEFAULTS["approval_timeout_hours"]
    raw_data_uri: str | None = None
    data: DataOptions = field(default_factory=DataOptions)
    data_checks: DataCheckOptions = field(default_factory=DataCheckOptions)
    slice_columns: tuple[str, ...] = ()


def _columns(params: Mapping[str, Any], name: str, nullable: bool) -> tuple[str, ...] | None:
    value = params.get(name)
    if value is None and nullable:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(c, str) and c for c in value):
        raise ParamsError(f"{name} must be a list of column names, got {value!r}")
    return tuple(value)


def _data_options(params: Mapping[str, Any], target: str, problem_type: str) -> DataOptions:
    drop = _columns({"drop_columns": [], **params}, "drop_columns", nullable=False) or ()
    categorical = _columns(params, "categorical_columns", nullable=True)
    numeric = _columns(params, "numeric_columns", nullable=True)
    for name, columns in (("drop_columns", drop), ("categorical_columns", categorical),
                          ("numeric_columns", numeric)):
        if columns and target in columns:
            raise ParamsError(f"{name} lists the target column {target!r}")
    both = sorted(set(categorical or ()) & set(numeric or ()))
    if both:
        raise ParamsError(f"column(s) {both} are declared both categorical and numeric")
    positive = params.get("positive_class")
    if positive is not None and problem_type != "classification":
        raise ParamsError("positive_class applies to classification only; leave it empty for "
                          "regression")
    recipes = _columns({"feature_recipes": [], **params}, "feature_recipes", nullable=False) or ()
    return DataOptions(drop, categorical, numeric, None if positive is None else str(positive),
                       recipes)


def parse_run_options(params: Mapping[str, Any]) -> RunOptions:
    """Check the cross-field rules and return typed options; raises ParamsError."""
    problem_type = params.get("problem_type", DEFAULTS["problem_type"])
    model = params.get("model", DEFAULTS["model"])
    try:
        model_spec(model, problem_type)
        given = params.get("hyperparameters") or {}
        typed = parse_hyperparameters(model, given)
    except HyperparameterError as exc:
        raise ParamsError(str(exc)) from None
    # only the given ones travel to train.py, which applies the same catalogue's defaults
    hyperparameters = {name: typed[name] for name in given}
    target = str(params.get("target") or "").strip()
    if not target:
        raise ParamsError("target must name the column to predict")
    thresholds = params.get("thresholds")
    if thresholds is not None:
        if not isinstance(thresholds, Mapping) or not thresholds:
            raise ParamsError(
                "thresholds must be a non-empty JSON object of metric -> '<op> <value>' "
                "(leave it empty for the defaults)"
            )
        unknown = [m for m in thresholds if m not in METRICS_BY_PROBLEM[problem_type]]
        if unknown:
            raise ParamsError(
                f"thresholds on {', '.join(map(repr, unknown))} do not apply to {problem_type}; "
                f"{problem_type} metrics are {', '.join(METRICS_BY_PROBLEM[problem_type])}"
            )
    try:
        gate = GatePolicy.build(
            problem_type,
            thresholds,
            champion_margin=float(params.get("champion_margin") or 0.0),
            decision_basis=params.get("decision_basis", "point"),
            leakage_max_improvement=params.get("leakage_tripwire"),
            **slice_rules(params),
        )
    except ValueError as exc:
        raise ParamsError(str(exc)) from None
    approval_mode = params.get("approval_mode", "auto")
    if approval_mode not in APPROVAL_MODES:
        raise ParamsError(f"approval_mode {approval_mode!r} is not one of {', '.join(APPROVAL_MODES)}")
    timeout = params.get("approval_timeout_hours", DEFAULTS["approval_timeout_hours"])
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 720:
        raise ParamsError(f"approval_timeout_hours must be a number of hours in (0, 720], got {timeout!r}")
    memory = params.get("serverless_memory_mb", 2048)
    if memory not in SERVERLESS_MEMORY_MB:
        raise ParamsError(
            f"serverless_memory_mb {memory!r} is not one of {', '.join(map(str, SERVERLESS_MEMORY_MB))}"
        )
    concurrency = params.get("serverless_max_concurrency", 5)
    if not isinstance(concurrency, int) or not 1 <= concurrency <= 200:
        raise ParamsError(f"serverless_max_concurrency must be an integer 1-200, got {concurrency!r}")
    data = _data_options(params, target, problem_type)
    try:
        data_checks = data_check_options(params)
        slices = slice_columns(params, target)
    except ValueError as exc:
        raise ParamsError(str(exc)) from None
    return RunOptions(
        problem_type=problem_type,
        target=target,
        model=model,
        hyperparameters=hyperparameters,
        gate=gate,
        approval_status=APPROVAL_MODES[approval_mode],
        serverless_memory_mb=int(memory),
        serverless_max_concurrency=concurrency,
        approval_timeout_hours=float(timeout),
        raw_data_uri=params.get("raw_data_uri") or None,
        data=data,
        data_checks=data_checks,
        slice_columns=slices,
    )
