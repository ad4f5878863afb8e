from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import pytest
from sagemaker_mlops.params import pipeline_params
from sagemaker_mlops.plan import RunPlan, build_plan
from sagemaker_mlops.run_options import ParamsError
from sagemaker_mlops.settings import (
    PROJECT_ROOT,
    Settings,
    load_settings,
    runtime_setting,
    sklearn_image_uri,
)
from sagemaker_mlops.specs import load_spec
from sagemaker_mlops.tasks import code_files, code_sha256

RUN_ID = "manual__2026-11-23T17:00:00+00:00"


def test_documented_defaults():
    settings = load_settings(environ={})
    assert settings == Settings(region="us-east-1")
    assert settings.image_uri == (
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
    )
    assert settings.topic_arn == "arn:aws:sns:us-east-1:123456789012:mlops-alerts"
    assert Path(settings.training_code_dir) == PROJECT_ROOT / "include" / "training"


def test_variable_beats_environment_beats_default():
    environ = {"MLOPS_BUCKET": "env-bucket", "MLOPS_ROLE_ARN": "arn:aws:iam::1:role/r",
               "MLOPS_POLL_SECONDS": "2.5"}
    variables = {"mlops_bucket": "var-bucket"}
    settings = load_settings(environ=environ, variable=variables.get)
    assert (settings.bucket, settings.role_arn, settings.poll_seconds) == (
        "var-bucket", "arn:aws:iam::1:role/r", 2.5
    )


def test_region_comes_from_the_connection_then_environment():
    assert load_settings(environ={}, region_of_connection=lambda conn: "eu-west-1").region == "eu-west-1"
    assert load_settings(environ={"AWS_DEFAULT_REGION": "eu-central-1"}).region == "eu-central-1"
    settings = load_settings(environ={"MLOPS_REGION": "us-west-2"}, region_of_connection=lambda c: "x")
    assert settings.region == "us-west-2"
    assert settings.image_uri.startswith("246618743249.dkr.ecr.us-west-2.amazonaws.com/")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MLOPS_POLL_SECONDS": "fast"}, "poll_seconds: expected a number of seconds"),
        ({"MLOPS_POLL_SECONDS": "0.05"}, "poll_seconds: must be >= 0.1"),
        ({"MLOPS_POLL_SECONDS": "nan"}, "poll_seconds: must be >= 0.1"),
        ({"MLOPS_DEFERRABLE": "sometimes"}, "deferrable: expected true/false"),
        ({"MLOPS_ROLE_ARN": "SageMakerRole"}, "full IAM role ARN"),
    ],
)
def test_bad_settings_are_named(environ, message):
    with pytest.raises(ValueError, match=message):
        load_settings(environ=environ)


def test_unknown_region_needs_an_explicit_image():
    with pytest.raises(ValueError, match="MLOPS_SKLEARN_IMAGE_URI"):
        sklearn_image_uri("xx-nowhere-1")
    custom = load_settings(environ={"MLOPS_REGION": "xx-nowhere-1", "MLOPS_SKLEARN_IMAGE_URI": "img"})
    assert custom.image_uri == "img"


def test_schedule_none_makes_every_pipeline_manual_only():
    assert load_settings(environ={}).schedule_for("@weekly") == "@weekly"
    assert load_settings(environ={"MLOPS_SCHEDULE": "none"}).schedule_for("@weekly") is None


def params(**overrides):
    return {**{n: p.value for n, p in pipeline_params().items()}, **overrides}


HOUSING = load_spec(PROJECT_ROOT / "dags" / "pipelines" / "california_housing.yaml")
CANCER = load_spec(PROJECT_ROOT / "dags" / "pipelines" / "breast_cancer.yaml")


def test_plan_wires_one_runs_names_and_uris_together():
    settings = load_settings(environ={"MLOPS_BUCKET": "b"})
    plan = build_plan(params(model="ridge", hyperparameters={"alpha": 2}), RUN_ID, settings, HOUSING)
    run = "s3://b/california-housing/runs/manual__2026-11-23T17-00-00-00-00/"
    assert plan.layout.run_uri == run
    assert plan.raw_data_uri == "s3://b/california-housing/raw/"
    preprocess = plan.preprocess_config
    assert preprocess["ProcessingInputs"][0]["S3Input"]["S3Uri"] == plan.raw_data_uri
    train = plan.train_config
    assert train["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == run + "data/train/"
    assert train["HyperParameters"]["alpha"] == "2.0"  # typed by the catalogue, JSON-encoded
    assert train["HyperParameters"]["sagemaker_region"] == f'"{settings.region}"'
    assert plan.gate.to_dict()["thresholds"] == [{"metric": "r2_score", "op": ">=", "value": 0.6}]
    assert plan.evaluate_job_name != preprocess["ProcessingJobName"] != train["TrainingJobName"]
    assert plan.alert_topic_arn == settings.topic_arn
    assert (plan.pipeline, plan.model_package_group, plan.endpoint_name) == (
        "california_housing", "california-housing", "california-housing"
    )


def test_plan_uses_the_raw_data_uri_param():
    plan = build_plan(
        params(raw_data_uri="s3://elsewhere/raw/2026/"), RUN_ID, load_settings(environ={}), HOUSING
    )
    assert plan.preprocess_config["ProcessingInputs"][0]["S3Input"]["S3Uri"] == "s3://elsewhere/raw/2026/"


def test_plan_rejects_bad_combinations():
    with pytest.raises(ParamsError, match="logistic_regression"):
        build_plan(params(model="logistic_regression"), RUN_ID, load_settings(environ={}), HOUSING)


def test_code_fingerprint_covers_names_and_contents(tmp_path):
    (tmp_path / "train.py").write_text("print('train')\n")
    (tmp_path / "helpers.py").write_text("X = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "helpers.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "requirements.txt").write_text("matplotlib\n")  # never shipped: nothing installs
    files = code_files(tmp_path)
    assert [p.name for p in files] == ["helpers.py", "train.py"]
    before = code_sha256(tmp_path, files)
    (tmp_path / "helpers.py").write_text("X = 2\n")
    assert code_sha256(tmp_path, files) != before


def test_missing_training_code_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="MLOPS_TRAINING_CODE_DIR"):
        code_files(tmp_path)


def test_each_pipeline_keeps_its_own_group_endpoint_and_prefix():
    settings = load_settings(environ={"MLOPS_BUCKET": "b"})
    cancer = build_plan(CANCER.params, RUN_ID, settings, CANCER)
    housing = build_plan(HOUSING.params, RUN_ID, settings, HOUSING)
    assert (cancer.model_package_group, cancer.endpoint_name) == ("breast-cancer", "breast-cancer")
    assert cancer.layout.run_uri.startswith("s3://b/breast-cancer/runs/")
    assert {cancer.model_package_group, cancer.endpoint_name} & {
        housing.model_package_group, housing.endpoint_name
    } == set()


def test_data_options_reach_preprocess_as_its_arguments():
    plan = build_plan(
        params(problem_type="classification", target="label", model="logistic_regression",
               drop_columns=["id", "ts"], categorical_columns=["colour"], positive_class="yes",
               feature_recipes=[]),
        RUN_ID, load_settings(environ={}), CANCER,
    )
    assert plan.preprocess_config["AppSpecification"]["ContainerArguments"] == [
        "--target", "label", "--problem-type", "classification", "--drop-columns", "id,ts",
        "--categorical-columns", "colour", "--positive-class", "yes",
        "--drift-psi-max", "0.25", "--target-psi-max", "0.25", "--missing-rate-increase-max", "0.05",
        "--missing-rate-max", "0.5",
    ]
    housing = build_plan(HOUSING.params, RUN_ID, load_settings(environ={}), HOUSING)
    arguments = housing.preprocess_config["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--feature-recipes") + 1] == "california_ratios"


def test_data_check_params_and_the_champions_profile_reach_preprocess():
    baseline = "s3://b/california-housing/runs/scheduled__x/data/profile/profile.json"
    plan = build_plan(params(data_checks="warn", drift_psi_max=0.1, missing_rate_max=0.3), RUN_ID,
                      load_settings(environ={}), HOUSING, baseline_profile_uri=baseline)
    assert (plan.data_checks_mode, plan.baseline_profile_uri) == ("warn", baseline)
    arguments = plan.preprocess_config["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--drift-psi-max") + 1] == "0.1"
    assert arguments[arguments.index("--missing-rate-max") + 1] == "0.3"
    assert arguments[arguments.index("--baseline-uri") + 1] == baseline
    inputs = [i["InputName"] for i in plan.preprocess_config["ProcessingInputs"]]
    assert inputs == ["raw", "code", "baseline"]
    first = build_plan(params(), RUN_ID, load_settings(environ={}), HOUSING)
    assert first.baseline_profile_uri is None and first.data_checks_mode == "enforce"
    assert "--baseline-profile" not in first.preprocess_config["AppSpecification"]["ContainerArguments"]


def test_the_plan_survives_xcom_as_json_and_refuses_foreign_documents():
    import json

    plan = build_plan(params(), RUN_ID, load_settings(environ={}), HOUSING)
    again = RunPlan.from_xcom(json.loads(json.dumps(plan.to_xcom())))
    assert again == plan
    data = plan.to_xcom()
    data["uris"] = data.pop("layout")
    with pytest.raises(ValueError, match=r"missing \['layout'\], unknown \['uris'\]"):
        RunPlan.from_xcom(data)


def test_one_runtime_setting_resolves_as_all_of_them_do(monkeypatch):
    environ = {"MLOPS_RUN_NOTE_CONN_ID": "my_api", "MLOPS_POLL_SECONDS": "2.5",
               "MLOPS_DEFERRABLE": "no", "MLOPS_REPORT_LINK_ENDPOINT": "http://localhost:4566"}
    for key in [k for k in os.environ if k.startswith("MLOPS_")]:
        monkeypatch.delenv(key)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    every = load_settings(environ=environ)
    for field in fields(Settings):
        if field.name != "region":  # region falls back to the connection's, a whole-settings rule
            assert runtime_setting(field.name) == getattr(every, field.name), field.name
    monkeypatch.setenv("MLOPS_POLL_SECONDS", "fast")
    with pytest.raises(ValueError, match="poll_seconds: expected a number of seconds"):
        runtime_setting("poll_seconds")
