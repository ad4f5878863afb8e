"""Per-run choices: the DAG Params of the trigger form and their cross-field validation.

JSON-schema types, enums and bounds reject bad single values when a run is triggered;
``parse_run_options`` then checks what a schema cannot (a model that does not fit the problem
type, thresholds on metrics of the other problem type, hyperparameters the model lacks) and is
the first task of the pipeline, so a bad combination fails before any SageMaker job starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from include.training.catalogue import (
    MODELS,
    PROBLEM_TYPES,
    HyperparameterError,
    hyperparameter_schema,
    model_spec,
    parse_hyperparameters,
)
from include.training.data_check_policy import DEFAULTS as DATA_CHECK_DEFAULTS
from include.training.data_check_policy import MODES as DATA_CHECK_MODES
from include.training.data_check_policy import THRESHOLDS as DATA_CHECK_THRESHOLDS
from sagemaker_mlops.gate import METRICS_BY_PROBLEM, GatePolicy
from sagemaker_mlops.slice_options import SLICE_DEFAULTS, slice_columns, slice_params, slice_rules

APPROVAL_MODES = {"auto": "Approved", "manual": "PendingManualApproval"}
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
THRESHOLD_PATTERN = r"^\s*(>=|<=|>|<)\s*[-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?\s*$"
COLUMN_LIST = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 128},
               "uniqueItems": True}
# the defaults of mlops_pipeline's Params; a pipeline spec overrides any of them
DEFAULTS: dict[str, Any] = {
    "problem_type": "regression", "target": "median_house_value", "model": "linear_regression",
    "hyperparameters": {}, "raw_data_uri": None, "drop_columns": [], "categorical_columns": None,
    "numeric_columns": None, "positive_class": None, "feature_recipes": [], "thresholds": None,
    "champion_margin": 0.0, "decision_basis": "point", "leakage_tripwire": None,
    "approval_mode": "auto", "approval_timeout_hours": 24, "serverless_memory_mb": 2048, "serverless_max_concurrency": 5,
    "data_checks": "enforce", **DATA_CHECK_DEFAULTS,
    **SLICE_DEFAULTS,
}


class ParamsError(ValueError):
    """A combination of run parameters that cannot work; the message says which and why."""


def _model_help() -> str:
    return "; ".join(
        f"{name}: {', '.join(f'{h.name} ({h.expected()})' for h in spec.hyperparameters) or 'none'}"
        for name, spec in MODELS.items()
    )


def pipeline_params(defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Params of a pipeline DAG, grouped in sections of the trigger form.

    ``defaults`` (a pipeline spec's ``params``) override the documented defaults in ``DEFAULTS``.
    """
    from airflow.sdk import Param

    d = {**DEFAULTS, **(defaults or {})}
    return {
        "problem_type": Param(
            d["problem_type"], type="string", enum=list(PROBLEM_TYPES), title="Problem type",
            description="regression (primary metric r2_score) or classification (primary metric f1).",
            section="Model",
        ),
        "target": Param(
            d["target"], type="string", minLength=1, maxLength=128, title="Target column",
            description="Column of the raw CSV to predict; every other column is a feature unless "
            "dropped.",
            section="Model",
        ),
        "model": Param(
            d["model"], type="string", enum=list(MODELS), title="Model",
            description="; ".join(f"{m}: {'/'.join(s.problem_types)}" for m, s in MODELS.items()),
            section="Model",
        ),
        "hyperparameters": Param(
            d["hyperparameters"], type="object", properties=hyperparameter_schema(),
            additionalProperties=False, title="Hyperparameters",
            description=f"JSON object passed to train.py, e.g. {{\"alpha\": 1.0}}. Per model: "
            f"{_model_help()}; seed (an integer >= 0) for all.",
            section="Model",
        ),
        "raw_data_uri": Param(
            d["raw_data_uri"], type=["null", "string"],
            pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$", title="Raw data URI",
            description="S3 prefix holding the raw CSV / CSV.gz files; empty: "
            "s3://<bucket>/<pipeline prefix>/raw/.",
            section="Data",
        ),
        "drop_columns": Param(
            d["drop_columns"], **COLUMN_LIST, title="Columns to drop",
            description="Columns of the raw CSV that are not features (ids, leaks).",
            section="Data",
        ),
        "categorical_columns": Param(
            d["categorical_columns"], type=["null", "array"], items=COLUMN_LIST["items"],
            title="Categorical columns",
            description="Columns to one-hot encode; empty: inferred from the values.",
            section="Data",
        ),
        "numeric_columns": Param(
            d["numeric_columns"], type=["null", "array"], items=COLUMN_LIST["items"],
            title="Numeric columns",
            description="Columns that must be numeric; empty: inferred from the values.",
            section="Data",
        ),
        "positive_class": Param(
            d["positive_class"], type=["null", "string", "integer"], title="Positive class",
            description="Binary classification: the label precision, recall, f1 and AUC are "
            "about; empty: the last of the two labels in sorted order (1 of 0/1, 'yes' of no/yes).",
            section="Data",
        ),
        "feature_recipes": Param(
            d["feature_recipes"], type="array",
            items={"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"}, uniqueItems=True,
            title="Feature recipes",
            description="Named derived features to add, e.g. california_ratios (needs the "
            "California housing census columns).",
            section="Data",
        ),
        "thresholds": Param(
            d["thresholds"], type=["null", "object"],
            additionalProperties={"type": "string", "pattern": THRESHOLD_PATTERN},
            title="Metric thresholds",
            description="Per metric '<op> <value>' with op > >= < <=, e.g. "
            "{\"r2_score\": \">= 0.6\", \"rmse\": \"<= 70000\"}. Empty: regression r2_score >= 0.6; "
            "classification accuracy > 0.90 and precision, recall, f1 > 0.85.",
            section="Quality gate",
        ),
        "champion_margin": Param(
            d["champion_margin"], type="number", minimum=0, maximum=1, title="Champion margin",
            description="How much worse than the current Approved champion the candidate may be "
            "on the primary metric (0: no worse).",
            section="Quality gate",
        ),
        "decision_basis": Param(
            d["decision_basis"], type="string", enum=["point", "lower_bound"],
            title="Decision basis",
            description="point: decide on point estimates. lower_bound: decide on the conservative "
            "end of the bootstrap 95% interval (stricter with small test sets).",
            section="Quality gate",
        ),
        "leakage_tripwire": Param(
            d["leakage_tripwire"], type=["null", "number"], exclusiveMinimum=0,
            title="Leakage tripwire",
            description="Fail a candidate that beats the champion on the primary metric by more "
            "than this (suspected leakage). Empty: off.",
            section="Quality gate",
        ),
        **slice_params(d, COLUMN_LIST["items"]),
        **data_check_params(d),
        "approval_mode": Param(
            d["approval_mode"], type="string", enum=list(APPROVAL_MODES), title="Approval",
            description="auto: a passing model is registered Approved and deployed. manual: it "
            "is registered PendingManualApproval and the run waits on the approve_model task "
            "(Required actions in the UI): Approve makes it Approved and deploys it, Reject makes "
            "it Rejected; both keep who decided and the comment in the version's metadata.",
            section="Release",
        ),
        "approval_timeout_hours": Param(
            d["approval_timeout_hours"], type="number", exclusiveMinimum=0, maximum=720,
            title="Approval timeout (hours)",
            description="approval_mode manual: without a decision within this many hours the "
            "version becomes Rejected and the failure alert is sent (default 24).",
            section="Release",
        ),
        "serverless_memory_mb": Param(
            d["serverless_memory_mb"], type="integer", enum=list(SERVERLESS_MEMORY_MB),
            title="Serverless memory (MB)", section="Release",
        ),
        "serverless_max_concurrency": Param(
            d["serverless_max_concurrency"], type="integer", minimum=1, maximum=200,
            title="Serverless max concurrency", section="Release",
        ),
    }


def data_check_params(d: Mapping[str, Any]) -> dict[str, Any]:
    """The "Data checks" section: whether a failed check stops the run, and each check's limit.

    Limits and their documented defaults come from ``include/training/data_check_policy.py``,
    which the preprocess job's options are built from too.
    """
    from airflow.sdk import Param

    params = {"data_checks": Param(
        d["data_checks"], type="string", enum=list(DATA_CHECK_MODES), title="Data checks",
        description="; ".join(f"{mode}: {what}" for mode, what in DATA_CHECK_MODES.items()) + ".",
        section="Data checks",
    )}
    for t in DATA_CHECK_THRESHOLDS:
        params[t.name] = Param(
            d[t.name], type="number", minimum=0, maximum=t.maximum, title=t.title,
            description=f"{t.description} Default {t.default:g}.", section="Data checks",
        )
    return params


def deploy_params(pipelines: list[str], default: str) -> dict[str, Any]:
    """Params of ``deploy_approved_model``: which pipeline's group, which version, how big."""
    from airflow.sdk import Param

    params = pipeline_params()
    return {
        "pipeline": Param(
            default, type="string", enum=sorted(pipelines), title="Pipeline",
            description="The pipeline spec whose model package group and endpoint to deploy.",
        ),
        "version": Param(
            None, type=["null", "integer"], minimum=1, title="Model version",
            description="Version number in the pipeline's model package group to deploy (roll "
            "back to); empty: the latest Approved version. The version must be Approved.",
        ),
        "serverless_memory_mb": params["serverless_memory_mb"],
        "serverless_max_concurrency": params["serverless_max_concurrency"],
    }


@dataclass(frozen=True)
class DataOptions:
    """How preprocess reads the raw data; empty values mean "infer from the data"."""

    drop_columns: tuple[str, ...] = ()
    categorical_columns: tuple[str, ...] | None = None
    numeric_columns: tuple[str, ...] | None = None
    positive_class: str | None = None
    feature_recipes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataCheckOptions:
    """Whether a failed data check stops the run, and the limits preprocess checks against."""

    mode: str = "enforce"
    limits: dict[str, float] = field(default_factory=lambda: dict(DATA_CHECK_DEFAULTS))

    def arguments(self) -> list[str]:
        """preprocess.py's options for the limits (its own defaults are the same numbers)."""
        return [arg for t in DATA_CHECK_THRESHOLDS for arg in (t.flag, repr(self.limits[t.name]))]


def _data_check_options(params: Mapping[str, Any]) -> DataCheckOptions:
    mode = params.get("data_checks", DEFAULTS["data_checks"])
    if mode not in DATA_CHECK_MODES:
        raise ParamsError(f"data_checks {mode!r} is not one of {', '.join(DATA_CHECK_MODES)}")
    limits = {}
    for t in DATA_CHECK_THRESHOLDS:
        value = params.get(t.name, t.default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= t.maximum:
            raise ParamsError(f"{t.name} must be a number from 0 to {t.maximum:g}, got {value!r}")
        limits[t.name] = float(value)
    return DataCheckOptions(mode, limits)


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
        data=_data_options(params, target, problem_type),
        data_checks=_data_check_options(params),
        slice_columns=_slice_columns(params, target),
    )


def _slice_columns(params: Mapping[str, Any], target: str) -> tuple[str, ...]:
    try:
        return slice_columns(params, target)
    except ValueError as exc:
        raise ParamsError(str(exc)) from None

