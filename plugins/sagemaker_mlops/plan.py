"""The run plan: everything one pipeline run needs, resolved once by its first task.

``build_plan`` is pure (settings + pipeline spec + params + run id -> every name, URI and job
request of the run), so one run uses one consistent set of settings even if a Variable changes
mid-run. The plan crosses task boundaries as XCom, i.e. as JSON: ``to_xcom`` writes it,
``from_xcom`` reads it back and refuses a document with missing or unknown keys, so a key the
DAG wires (``plan["train_config"]``) is always a field of ``RunPlan``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from sagemaker_mlops import job_configs, naming
from sagemaker_mlops.gate_policy import GatePolicy
from sagemaker_mlops.run_options import DataOptions, parse_run_options
from sagemaker_mlops.settings import Settings


class PipelineIdentity(Protocol):
    """What a run needs of its pipeline spec (``specs.PipelineSpec`` has these)."""

    name: str
    model_package_group: str
    endpoint_name: str
    s3_prefix: str


@dataclass(frozen=True)
class RunUris:
    """Where this run keeps its code, data profile, evaluation and verdict in S3."""

    run_uri: str
    scripts_uri: str
    sourcedir_uri: str
    profile_json_uri: str
    data_checks_json_uri: str
    evaluation_uri: str
    evaluation_json_uri: str
    verdict_json_uri: str

    @classmethod
    def of(cls, layout: naming.RunLayout) -> RunUris:
        return cls(**{f.name: getattr(layout, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    pipeline: str
    region: str
    bucket: str
    prefix: str
    role_arn: str
    image_uri: str
    model_package_group: str
    endpoint_name: str
    alert_topic_arn: str
    training_code_dir: str
    processing_instance_type: str
    problem_type: str
    target: str
    model: str
    approval_status: str
    approval_timeout_hours: float
    serverless_memory_mb: int
    serverless_max_concurrency: int
    gate: GatePolicy
    raw_data_uri: str
    data_checks_mode: str  # enforce | warn (data_check_policy.MODES)
    baseline_profile_uri: str | None  # the champion's profile.json; None: first model
    layout: RunUris
    evaluate_job_name: str
    slice_columns: list[str]
    preprocess_config: dict[str, Any]
    train_config: dict[str, Any]

    def to_xcom(self) -> dict[str, Any]:
        return {**asdict(self), "gate": self.gate.to_dict()}

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> RunPlan:
        names = {f.name for f in fields(cls)}
        missing, unknown = sorted(names - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise ValueError(f"not a run plan: missing {missing}, unknown {unknown}")
        return cls(**{**data, "gate": GatePolicy.from_dict(data["gate"]),
                      "layout": RunUris(**data["layout"])})

    def slice_arguments(self) -> list[str]:
        """evaluate.py's slice options; none when no slice columns were chosen."""
        if not self.slice_columns:
            return []
        return ["--slice-columns", ",".join(self.slice_columns),
                "--slice-min-rows", str(self.gate.slice_min_rows)]

    @classmethod
    def keys(cls) -> frozenset[str]:
        """The XCom keys of a plan (one per field)."""
        return frozenset(f.name for f in fields(cls))


def data_arguments(data: DataOptions) -> list[str]:
    """preprocess.py's options about the data set; empty choices are left to its inference."""
    arguments: list[str] = []
    for flag, values in (("--drop-columns", data.drop_columns),
                         ("--categorical-columns", data.categorical_columns),
                         ("--numeric-columns", data.numeric_columns),
                         ("--feature-recipes", data.feature_recipes)):
        if values:
            arguments += [flag, ",".join(values)]
    if data.positive_class is not None:
        arguments += ["--positive-class", data.positive_class]
    return arguments


def build_plan(
    params: Mapping[str, Any], run_id: str, settings: Settings, pipeline: PipelineIdentity,
    baseline_profile_uri: str | None = None,
) -> RunPlan:
    """Everything a run needs: names, S3 layout, job requests, gate policy.

    ``baseline_profile_uri``: the champion's training-data profile, which preprocess's data
    checks compare the new data with (``registry.data_profile_uri``).
    """
    options = parse_run_options(params)
    layout = naming.RunLayout(settings.bucket, pipeline.s3_prefix, run_id)
    raw_uri = options.raw_data_uri or layout.default_raw_uri
    image_uri = settings.image_uri
    common = {"image_uri": image_uri, "role_arn": settings.role_arn}
    preprocess = job_configs.preprocess_config(
        name=naming.job_name("preprocess", run_id), layout=layout, raw_uri=raw_uri,
        problem_type=options.problem_type, target=options.target,
        instance_type=settings.processing_instance_type,
        data_arguments=data_arguments(options.data) + options.data_checks.arguments(),
        baseline_profile_uri=baseline_profile_uri, **common,
    )
    return RunPlan(
        run_id=run_id,
        pipeline=pipeline.name,
        region=settings.region,
        bucket=settings.bucket,
        prefix=pipeline.s3_prefix,
        role_arn=settings.role_arn,
        image_uri=image_uri,
        model_package_group=pipeline.model_package_group,
        endpoint_name=pipeline.endpoint_name,
        alert_topic_arn=settings.topic_arn,
        training_code_dir=settings.training_code_dir,
        processing_instance_type=settings.processing_instance_type,
        problem_type=options.problem_type,
        target=options.target,
        model=options.model,
        approval_status=options.approval_status,
        approval_timeout_hours=options.approval_timeout_hours,
        serverless_memory_mb=options.serverless_memory_mb,
        serverless_max_concurrency=options.serverless_max_concurrency,
        gate=options.gate,
        raw_data_uri=raw_uri,
        data_checks_mode=options.data_checks.mode,
        baseline_profile_uri=baseline_profile_uri,
        layout=RunUris.of(layout),
        evaluate_job_name=naming.job_name("evaluate", run_id),
        slice_columns=list(options.slice_columns),
        preprocess_config=preprocess,
        train_config=job_configs.training_config(
            name=naming.job_name("train", run_id), layout=layout,
            problem_type=options.problem_type, target=options.target, model=options.model,
            hyperparameters=options.hyperparameters, region=settings.region,
            instance_type=settings.training_instance_type, **common,
        ),
    )
