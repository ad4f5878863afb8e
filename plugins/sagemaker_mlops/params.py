"""The trigger form: the DAG Params of a pipeline run and of a deployment, in form sections.

JSON-schema types, enums and bounds here reject bad single values when a run is triggered;
cross-field checks are ``run_options.py``'s. The "Slices" and "Data checks" sections live with
their own checks (``slice_options.py``, ``data_check_options.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from include.training.catalogue import MODELS, PROBLEM_TYPES, hyperparameter_schema
from sagemaker_mlops.data_check_options import DATA_CHECK_DEFAULTS, data_check_params
from sagemaker_mlops.slice_options import SLICE_DEFAULTS, slice_params

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
    **DATA_CHECK_DEFAULTS,
    **SLICE_DEFAULTS,
}


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
