from __future__ import annotations

import json
import re

import botocore.session
import pytest
from botocore.validate import validate_parameters
from sagemaker_mlops import job_configs, model_configs, naming
from sagemaker_mlops.naming import RunLayout

RUN_ID = "manual__2026-11-23T17:00:00.123456+00:00"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


def assert_valid(operation: str, request: dict, name_field: str) -> None:
    """The request passes botocore's own checks, and its name the API's pattern."""
    shape = SAGEMAKER.operation_model(operation).input_shape
    validate_parameters(request, shape)  # raises ParamValidationError with every problem
    name_shape = shape.members[name_field]
    name = request[name_field]
    assert len(name) <= name_shape.metadata["max"]
    assert re.fullmatch(name_shape.metadata["pattern"], name), name


@pytest.fixture
def layout() -> RunLayout:
    return RunLayout("mlops-offline", "california-housing", RUN_ID)


def test_layout_follows_the_contract(layout):
    run = "s3://mlops-offline/california-housing/runs/manual__2026-11-23T17-00-00.123456-00-00/"
    assert layout.run_uri == run
    assert layout.sourcedir_uri == run + "code/sourcedir.tar.gz"
    assert layout.data_uri("test") == run + "data/test/"
    assert layout.model_uri == run + "model/"
    assert layout.evaluation_json_uri == run + "evaluation/evaluation.json"
    assert layout.verdict_json_uri == run + "evaluation/verdict.json"
    assert layout.default_raw_uri == "s3://mlops-offline/california-housing/raw/"
    assert RunLayout("b", "", RUN_ID).default_raw_uri == "s3://b/raw/"


@pytest.mark.parametrize(
    "run_id",
    [RUN_ID, "scheduled__2026-01-04T00:00:00+00:00", "x" * 300, "my run with spaces & ünïcode"],
)
def test_job_names_are_valid_and_unique_per_run_and_kind(run_id):
    names = {naming.job_name(kind, run_id) for kind in ("preprocess", "train", "evaluate")}
    assert len(names) == 3
    for name in names:
        assert len(name) <= 63 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name), name
    other = naming.job_name("train", run_id + "-2")
    assert other not in names


def test_job_name_is_readable():
    assert re.fullmatch(r"mlops-train-20261123T170000-[0-9a-f]{8}", naming.job_name("train", RUN_ID))


def test_preprocess_request_is_valid(layout):
    request = job_configs.preprocess_config(
        name=naming.job_name("preprocess", RUN_ID), layout=layout,
        raw_uri=layout.default_raw_uri, problem_type="regression", target="median_house_value",
        image_uri=IMAGE, role_arn=ROLE, instance_type="ml.m5.large",
    )
    assert_valid("CreateProcessingJob", request, "ProcessingJobName")
    app = request["AppSpecification"]
    assert app["ContainerEntrypoint"] == ["python3", "/opt/ml/processing/input/code/preprocess.py"]
    assert app["ContainerArguments"] == ["--target", "median_house_value", "--problem-type", "regression"]
    inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
    assert inputs["code"]["S3Uri"] == layout.scripts_uri
    assert inputs["code"]["LocalPath"] == "/opt/ml/processing/input/code"
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in request["ProcessingOutputConfig"]["Outputs"]}
    assert outputs == {s: layout.data_uri(s) for s in ("train", "validation", "test", "profile")}


def test_preprocess_gets_the_champions_profile_and_the_data_check_limits(layout):
    baseline = "s3://b/california-housing/runs/manual__1/data/profile/profile.json"
    request = job_configs.preprocess_config(
        name=naming.job_name("preprocess", RUN_ID), layout=layout,
        raw_uri=layout.default_raw_uri, problem_type="regression", target="median_house_value",
        image_uri=IMAGE, role_arn=ROLE, instance_type="ml.m5.large",
        data_arguments=["--drift-psi-max", "0.2"], baseline_profile_uri=baseline,
    )
    assert_valid("CreateProcessingJob", request, "ProcessingJobName")
    inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
    assert inputs["baseline"]["S3Uri"] == baseline
    assert inputs["baseline"]["LocalPath"] == "/opt/ml/processing/input/baseline"
    arguments = request["AppSpecification"]["ContainerArguments"]
    assert arguments[-6:] == ["--drift-psi-max", "0.2", "--baseline-profile",
                              "/opt/ml/processing/input/baseline/profile.json", "--baseline-uri", baseline]
    assert layout.data_checks_json_uri == layout.data_uri("profile") + "data_checks.json"


def test_training_request_is_script_mode_and_valid(layout):
    request = job_configs.training_config(
        name=naming.job_name("train", RUN_ID), layout=layout, problem_type="regression",
        target="median_house_value", model="random_forest",
        hyperparameters={"n_estimators": "50", "max_depth": "8", "note": "null", "flag": True},
        image_uri=IMAGE, role_arn=ROLE, instance_type="ml.m5.large", region="eu-west-1",
    )
    assert_valid("CreateTrainingJob", request, "TrainingJobName")
    hps = request["HyperParameters"]
    # every value JSON-encoded, as the SageMaker SDK sends it; the toolkit decodes each one
    assert hps["sagemaker_program"] == '"train.py"'
    assert all(isinstance(v, str) for v in hps.values())
    decoded = {k: json.loads(v) for k, v in hps.items()}
    assert decoded == {
        "sagemaker_program": "train.py", "sagemaker_submit_directory": layout.sourcedir_uri,
        "sagemaker_container_log_level": 20, "sagemaker_job_name": request["TrainingJobName"],
        "sagemaker_region": "eu-west-1",
        "problem_type": "regression", "target": "median_house_value", "model": "random_forest",
        "n_estimators": "50", "max_depth": "8", "note": "null", "flag": True,
    }
    assert request["OutputDataConfig"]["S3OutputPath"] == layout.model_uri
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["train", "validation"]


@pytest.mark.parametrize(
    ("problem_type", "line", "name", "value"),
    [
        ("regression", "[INFO] Training r2_score: 0.6412", "training:r2_score", "0.6412"),
        ("regression", "[INFO] Validation rmse: 68123.5", "validation:rmse", "68123.5"),
        ("classification", "[INFO] Validation f1: 8.5e-01", "validation:f1", "8.5e-01"),
    ],
)
def test_metric_definitions_match_train_log_lines(problem_type, line, name, value):
    definitions = {d["Name"]: d["Regex"] for d in job_configs.metric_definitions(problem_type)}
    assert re.search(definitions[name], line).group(1) == value


def test_evaluate_request_with_and_without_champion(layout):
    common = dict(name=naming.job_name("evaluate", RUN_ID), layout=layout,
                  model_artifact=layout.model_uri + "job/output/model.tar.gz",
                  image_uri=IMAGE, role_arn=ROLE, instance_type="ml.m5.large")
    alone = job_configs.evaluate_config(champion_artifact=None, **common)
    assert_valid("CreateProcessingJob", alone, "ProcessingJobName")
    assert [i["InputName"] for i in alone["ProcessingInputs"]] == ["model", "test", "code", "data_checks"]
    data_checks = alone["ProcessingInputs"][-1]["S3Input"]
    assert data_checks["S3Uri"] == layout.data_uri("profile") + "data_checks.json"
    assert data_checks["LocalPath"] == "/opt/ml/processing/data_checks"
    versus = job_configs.evaluate_config(champion_artifact="s3://b/old/model.tar.gz", **common)
    assert_valid("CreateProcessingJob", versus, "ProcessingJobName")
    champion = next(i for i in versus["ProcessingInputs"] if i["InputName"] == "champion")
    assert champion["S3Input"]["LocalPath"] == "/opt/ml/processing/champion"
    assert versus["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == layout.evaluation_uri


def test_model_package_request_is_valid(layout):
    extras = model_configs.model_package_extras(
        image_uri=IMAGE, model_artifact="s3://b/model.tar.gz", sourcedir_uri=layout.sourcedir_uri,
        region="us-east-1", evaluation_json_uri=layout.evaluation_json_uri,
        metadata={"run_id": RUN_ID, "verdict": "x" * 400}, description="d", approval_status="Approved",
    )
    request = {"ModelPackageGroupName": "california-housing", **extras}
    assert_valid("CreateModelPackage", request, "ModelPackageGroupName")
    spec = extras["InferenceSpecification"]
    assert spec["SupportedContentTypes"] == ["text/csv", "application/json"]
    assert spec["Containers"][0]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert extras["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == layout.evaluation_json_uri
    assert len(extras["CustomerMetadataProperties"]["verdict"]) == 256


def test_model_and_serverless_endpoint_config_are_valid():
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/california-housing/3"
    model_name = naming.resource_name("california-housing", "v3", unique=RUN_ID)
    model = model_configs.model_config(name=model_name, model_package_arn=arn, role_arn=ROLE)
    assert_valid("CreateModel", model, "ModelName")
    config_name = naming.resource_name("california-housing", "v3", "cfg", unique=RUN_ID)
    config = model_configs.serverless_endpoint_config(
        name=config_name, model_name=model_name, memory_mb=2048, max_concurrency=5
    )
    assert_valid("CreateEndpointConfig", config, "EndpointConfigName")
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}


def test_resource_name_cuts_long_parts_but_stays_unique():
    a = naming.resource_name("e" * 80, "v1", unique="run-a")
    b = naming.resource_name("e" * 80, "v1", unique="run-b")
    assert len(a) == len(b) == 63 and a != b


@pytest.mark.parametrize("uri", ["bucket/key", "s3:/bucket", "http://bucket/key"])
def test_split_s3_uri_rejects_non_s3(uri):
    with pytest.raises(ValueError, match="not an S3 URI"):
        naming.split_s3_uri(uri)
