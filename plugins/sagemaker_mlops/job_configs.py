"""Request bodies for the run's jobs: CreateProcessingJob (preprocess, evaluate), CreateTrainingJob.

Pure functions of settings, run options and names, so every request can be checked against
botocore's SageMaker model in unit tests. Where the jobs read and write is ``naming.RunLayout``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sagemaker_mlops.gate_policy import METRICS_BY_PROBLEM
from sagemaker_mlops.naming import RunLayout

SPLITS = ("train", "validation", "test")
PROCESSING_ROOT = "/opt/ml/processing"
CODE_DIR = f"{PROCESSING_ROOT}/input/code"
TRAINING_PROGRAM = "train.py"
MAX_RUNTIME_SECONDS = 3600
CONTAINER_LOG_LEVEL = 20  # logging.INFO, the SageMaker SDK's default container_log_level


def _input(name: str, uri: str, local_path: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def _output(name: str, uri: str, local_path: str) -> dict[str, Any]:
    return {
        "OutputName": name,
        "S3Output": {"S3Uri": uri, "LocalPath": local_path, "S3UploadMode": "EndOfJob"},
    }


def _processing_job(
    name: str, script: str, arguments: list[str], inputs: list[dict], outputs: list[dict],
    image_uri: str, role_arn: str, instance_type: str,
) -> dict[str, Any]:
    app: dict[str, Any] = {
        "ImageUri": image_uri,
        "ContainerEntrypoint": ["python3", f"{CODE_DIR}/{script}"],
    }
    if arguments:  # the API rejects an empty list
        app["ContainerArguments"] = arguments
    return {
        "ProcessingJobName": name,
        "RoleArn": role_arn,
        "AppSpecification": app,
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {"Outputs": outputs},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": 30}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME_SECONDS},
    }


def preprocess_config(
    *, name: str, layout: RunLayout, raw_uri: str, problem_type: str, target: str,
    image_uri: str, role_arn: str, instance_type: str, data_arguments: Sequence[str] = (),
    baseline_profile_uri: str | None = None,
) -> dict[str, Any]:
    """CreateProcessingJob for include/training/preprocess.py.

    ``data_arguments``: its options about the data set (drop/categorical/numeric columns,
    positive class, feature recipes, data-check limits), as ``plan.data_arguments`` builds them.
    ``baseline_profile_uri``: the champion's profile.json, mounted as the ``baseline`` input so
    the data checks bin the new rows on the champion's own bins; None for the first model.
    """
    outputs = [
        _output(split, layout.data_uri(split), f"{PROCESSING_ROOT}/output/{split}")
        for split in (*SPLITS, "profile")
    ]
    inputs = [
        _input("raw", raw_uri, f"{PROCESSING_ROOT}/input/raw"),
        _input("code", layout.scripts_uri, CODE_DIR),
    ]
    arguments = ["--target", target, "--problem-type", problem_type, *data_arguments]
    if baseline_profile_uri:
        inputs.append(_input("baseline", baseline_profile_uri, f"{PROCESSING_ROOT}/input/baseline"))
        arguments += ["--baseline-profile",
                      f"{PROCESSING_ROOT}/input/baseline/{baseline_profile_uri.rsplit('/', 1)[-1]}",
                      "--baseline-uri", baseline_profile_uri]
    return _processing_job(
        name, "preprocess.py", arguments, inputs, outputs, image_uri, role_arn, instance_type
    )


def metric_definitions(problem_type: str) -> list[dict[str, str]]:
    """Regexes for train.py's ``[INFO] Training r2_score: 0.64`` lines."""
    definitions = []
    for stage in ("Training", "Validation"):
        for metric in METRICS_BY_PROBLEM[problem_type]:
            if metric == "mse":
                continue  # train.py logs r2_score, rmse and mae for regression
            definitions.append(
                {
                    "Name": f"{stage.lower()}:{metric}",
                    "Regex": rf"\[INFO\] {stage} {metric}: ([-+0-9.eE]+|nan)",
                }
            )
    return definitions


def sdk_hyperparameters(values: dict[str, Any]) -> dict[str, str]:
    """Every value JSON-encoded, as the SageMaker Python SDK sends them (``"\\"train.py\\""``).

    The training toolkit JSON-decodes each value and keeps the text only when it is not JSON, so a
    plain string that happens to be a JSON literal (``1e3``, ``null``, ``true``) would change type;
    encoded, every value reaches train.py as it was meant. ``None`` values are left out.
    """
    return {str(k): json.dumps(v) for k, v in values.items() if v is not None}


def training_config(
    *, name: str, layout: RunLayout, problem_type: str, target: str, model: str,
    hyperparameters: dict[str, str], image_uri: str, role_arn: str, instance_type: str,
    region: str,
) -> dict[str, Any]:
    """CreateTrainingJob in script mode for include/training/train.py.

    The ``sagemaker_*`` hyperparameters are the ones the SDK's Framework estimator sets in script
    mode (program, submit directory, container log level, job name, region; the toolkit takes the
    region from ``sagemaker_region``). If the provider renames a retried job
    (``action_if_job_exists="timestamp"``), ``sagemaker_job_name`` keeps the first name.
    """
    channels = [
        {
            "ChannelName": split,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": layout.data_uri(split),
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "ContentType": "text/csv",
            "InputMode": "File",
        }
        for split in ("train", "validation")
    ]
    return {
        "TrainingJobName": name,
        "RoleArn": role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": metric_definitions(problem_type),
        },
        "HyperParameters": sdk_hyperparameters({
            "sagemaker_program": TRAINING_PROGRAM,
            "sagemaker_submit_directory": layout.sourcedir_uri,
            "sagemaker_container_log_level": CONTAINER_LOG_LEVEL,
            "sagemaker_job_name": name,
            "sagemaker_region": region,
            "problem_type": problem_type,
            "target": target,
            "model": model,
            **hyperparameters,
        }),
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": layout.model_uri},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME_SECONDS},
    }


def evaluate_config(
    *, name: str, layout: RunLayout, model_artifact: str, champion_artifact: str | None,
    image_uri: str, role_arn: str, instance_type: str, slice_arguments: Sequence[str] = (),
) -> dict[str, Any]:
    """CreateProcessingJob for include/training/evaluate.py (candidate and champion).

    ``slice_arguments``: its slice options (``plan.slice_arguments``), empty for no slices.

    The run's data_checks.json goes in too, so report.html shows the data checks beside the
    metrics.
    """
    inputs = [
        _input("model", model_artifact, f"{PROCESSING_ROOT}/model"),
        _input("test", layout.data_uri("test"), f"{PROCESSING_ROOT}/test"),
        _input("code", layout.scripts_uri, CODE_DIR),
        _input("data_checks", layout.data_checks_json_uri, f"{PROCESSING_ROOT}/data_checks"),
    ]
    arguments = []
    if champion_artifact:
        inputs.insert(1, _input("champion", champion_artifact, f"{PROCESSING_ROOT}/champion"))
        arguments = ["--champion-model-uri", champion_artifact]
    arguments += list(slice_arguments)
    return _processing_job(
        name, "evaluate.py", arguments,
        inputs,
        [_output("evaluation", layout.evaluation_uri, f"{PROCESSING_ROOT}/evaluation")],
        image_uri, role_arn, instance_type,
    )
