"""Per-run choices: the DAG Params of the trigger form and their cross-field validation.

JSON-schema types, enums and bounds reject bad single values when a run is triggered;
``parse_run_options`` then checks what a schema cannot (a model that does not fit the problem
type, thresholds on metrics of the other problem type, hyperparameters the model lacks) and is
the first task of the pipeline, so a bad combination fails before any SageMaker job starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sagemaker_mlops.gate import METRICS_BY_PROBLEM, GatePolicy

PROBLEM_TYPES = ("regression", "classification")
# model -> problem types it serves (the models include/training/train.py offers)
MODELS: dict[str, tuple[str, ...]] = {
    "linear_regression": ("regression",),
    "ridge": ("regression",),
    "hist_gradient_boosting": ("regression", "classification"),
    "random_forest": ("regression", "classification"),
    "logistic_regression": ("classification",),
}
# hyperparameters train.py accepts per model ("seed" everywhere)
MODEL_HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "linear_regression": (),
    "ridge": ("alpha",),
    "hist_gradient_boosting": ("learning_rate", "max_iter", "max_depth", "min_samples_leaf"),
    "random_forest": ("n_estimators", "max_depth", "min_samples_leaf"),
    "logistic_regression": ("C", "max_iter"),
}
APPROVAL_MODES = {"auto": "Approved", "manual": "PendingManualApproval"}
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
THRESHOLD_PATTERN = r"^\s*(>=|<=|>|<)\s*[-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?\s*$"


class ParamsError(ValueError):
    """A combination of run parameters that cannot work; the message says which and why."""


def pipeline_params() -> dict[str, Any]:
    """Params of ``mlops_pipeline``, grouped in sections of the trigger form."""
    from airflow.sdk import Param

    model_help = "; ".join(f"{m}: {', '.join(p) or 'none'}" for m, p in MODEL_HYPERPARAMETERS.items())
    return {
        "problem_type": Param(
            "regression", type="string", enum=list(PROBLEM_TYPES), title="Problem type",
            description="regression (primary metric r2_score) or classification (primary metric f1).",
            section="Model",
        ),
        "target": Param(
            "median_house_value", type="string", minLength=1, maxLength=128, title="Target column",
            description="Column of the raw CSV to predict; every other column is a feature.",
            section="Model",
        ),
        "model": Param(
            "linear_regression", type="string", enum=list(MODELS), title="Model",
            description="Regression: linear_regression, ridge, random_forest, "
            "hist_gradient_boosting. Classification: logistic_regression, random_forest, "
            "hist_gradient_boosting.",
            section="Model",
        ),
        "hyperparameters": Param(
            {}, type="object",
            additionalProperties={"type": ["number", "string"]},
            title="Hyperparameters",
            description=f"JSON object passed to train.py, e.g. {{\"alpha\": 1.0}}. Per model: {model_help}; "
            "seed for all.",
            section="Model",
        ),
        "raw_data_uri": Param(
            None, type=["null", "string"], pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$",
            title="Raw data URI",
            description="S3 prefix holding the raw CSV / CSV.gz files; empty: "
            "s3://<bucket>/<prefix>/raw/.",
            section="Data",
        ),
        "thresholds": Param(
            None, type=["null", "object"],
            additionalProperties={"type": "string", "pattern": THRESHOLD_PATTERN},
            title="Metric thresholds",
            description="Per metric '<op> <value>' with op > >= < <=, e.g. "
            "{\"r2_score\": \">= 0.6\", \"rmse\": \"<= 70000\"}. Empty: regression r2_score >= 0.6; "
            "classification accuracy > 0.90 and precision, recall, f1 > 0.85.",
            section="Quality gate",
        ),
        "champion_margin": Param(
            0.0, type="number", minimum=0, maximum=1, title="Champion margin",
            description="How much worse than the current Approved champion the candidate may be "
            "on the primary metric (0: no worse).",
            section="Quality gate",
        ),
        "decision_basis": Param(
            "point", type="string", enum=["point", "lower_bound"], title="Decision basis",
            description="point: decide on point estimates. lower_bound: decide on the conservative "
            "end of the bootstrap 95% interval (stricter with small test sets).",
            section="Quality gate",
        ),
        "leakage_tripwire": Param(
            None, type=["null", "number"], exclusiveMinimum=0, title="Leakage tripwire",
            description="Fail a candidate that beats the champion on the primary metric by more "
            "than this (suspected leakage). Empty: off.",
            section="Quality gate",
        ),
        "approval_mode": Param(
            "auto", type="string", enum=list(APPROVAL_MODES), title="Approval",
            description="auto: a passing model is registered Approved and deployed. manual: "
            "registered PendingManualApproval; deploy later with deploy_approved_model.",
            section="Release",
        ),
        "serverless_memory_mb": Param(
            2048, type="integer", enum=list(SERVERLESS_MEMORY_MB), title="Serverless memory (MB)",
            section="Release",
        ),
        "serverless_max_concurrency": Param(
            5, type="integer", minimum=1, maximum=200, title="Serverless max concurrency",
            section="Release",
        ),
    }


def deploy_params() -> dict[str, Any]:
    """Params of ``deploy_approved_model``."""
    from airflow.sdk import Param

    params = pipeline_params()
    return {
        "version": Param(
            None, type=["null", "integer"], minimum=1, title="Model version",
            description="Version number in the model package group to deploy (roll back to); "
            "empty: the latest Approved version. The version must be Approved.",
        ),
        "serverless_memory_mb": params["serverless_memory_mb"],
        "serverless_max_concurrency": params["serverless_max_concurrency"],
    }


@dataclass(frozen=True)
class RunOptions:
    """Validated per-run options."""

    problem_type: str
    target: str
    model: str
    hyperparameters: dict[str, str]
    gate: GatePolicy
    approval_status: str
    serverless_memory_mb: int
    serverless_max_concurrency: int
    raw_data_uri: str | None = None


def _hyperparameter_value(model: str, name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ParamsError(
            f"hyperparameter {name!r} of {model}: expected a number or string, got {value!r}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamsError(f"hyperparameter {name!r} of {model}: must be finite, got {value}")
    text = str(value).strip()
    if not text:
        raise ParamsError(f"hyperparameter {name!r} of {model}: empty value")
    return text


def parse_run_options(params: Mapping[str, Any]) -> RunOptions:
    """Check the cross-field rules and return typed options; raises ParamsError."""
    problem_type = params.get("problem_type", "regression")
    if problem_type not in PROBLEM_TYPES:
        raise ParamsError(f"problem_type {problem_type!r} is not one of {', '.join(PROBLEM_TYPES)}")
    model = params.get("model", "linear_regression")
    if model not in MODELS:
        raise ParamsError(f"model {model!r} is not one of {', '.join(MODELS)}")
    if problem_type not in MODELS[model]:
        fitting = [m for m, kinds in MODELS.items() if problem_type in kinds]
        raise ParamsError(
            f"model {model!r} is a {'/'.join(MODELS[model])} model and cannot be used for "
            f"problem_type {problem_type!r}; choose one of {', '.join(fitting)}"
        )
    target = str(params.get("target") or "").strip()
    if not target:
        raise ParamsError("target must name the column to predict")
    allowed = set(MODEL_HYPERPARAMETERS[model]) | {"seed"}
    hyperparameters = {}
    for name, value in (params.get("hyperparameters") or {}).items():
        if name not in allowed:
            raise ParamsError(
                f"hyperparameter {name!r} does not apply to {model}; it accepts "
                f"{', '.join(sorted(allowed))}"
            )
        hyperparameters[name] = _hyperparameter_value(model, name, value)
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
        )
    except ValueError as exc:
        raise ParamsError(str(exc)) from None
    approval_mode = params.get("approval_mode", "auto")
    if approval_mode not in APPROVAL_MODES:
        raise ParamsError(f"approval_mode {approval_mode!r} is not one of {', '.join(APPROVAL_MODES)}")
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
        raw_data_uri=params.get("raw_data_uri") or None,
    )
