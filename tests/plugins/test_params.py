from __future__ import annotations

import pytest
from airflow.sdk import Param
from airflow.sdk.definitions.param import ParamsDict
from sagemaker_mlops.gate_policy import Threshold
from sagemaker_mlops.params import deploy_params, pipeline_params
from sagemaker_mlops.run_options import ParamsError, parse_run_options


def defaults() -> dict:
    return {name: param.value for name, param in pipeline_params().items()}


def test_defaults_validate_and_parse():
    ParamsDict(pipeline_params()).validate()
    options = parse_run_options(defaults())
    assert (options.problem_type, options.target, options.model) == (
        "regression", "median_house_value", "linear_regression"
    )
    assert options.gate.thresholds == (Threshold("r2_score", ">=", 0.6),)
    assert options.gate.champion_margin == 0.0
    assert options.gate.decision_basis == "point"
    assert options.gate.leakage_max_improvement is None
    assert options.approval_status == "Approved"
    assert (options.serverless_memory_mb, options.serverless_max_concurrency) == (2048, 5)
    assert options.raw_data_uri is None


def test_every_param_has_a_title_section_and_schema_type():
    for name, param in pipeline_params().items():
        assert isinstance(param, Param)
        assert param.schema.get("title"), name
        assert param.schema.get("section"), name
        assert "type" in param.schema, name


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("problem_type", "ranking"),
        ("model", "xgboost"),
        ("serverless_memory_mb", 1500),
        ("serverless_max_concurrency", 0),
        ("serverless_max_concurrency", 201),
        ("decision_basis", "median"),
        ("approval_mode", "maybe"),
        ("champion_margin", -0.1),
        ("leakage_tripwire", 0),
        ("raw_data_uri", "/local/path"),
        ("thresholds", {"r2_score": "at least 0.6"}),
        ("hyperparameters", {"alpha": [1, 2]}),
        ("target", ""),
    ],
)
def test_schema_rejects_bad_single_values_at_trigger_time(name, value):
    params = ParamsDict(pipeline_params())
    with pytest.raises(Exception, match=name):
        params[name] = value


def test_classification_model_for_regression_is_rejected_with_choices():
    with pytest.raises(ParamsError) as error:
        parse_run_options({**defaults(), "model": "logistic_regression"})
    assert str(error.value) == (
        "model 'logistic_regression' is a classification model and cannot be used for "
        "problem_type 'regression'; choose one of linear_regression, ridge, "
        "random_forest, hist_gradient_boosting"
    )


def test_regression_model_for_classification_is_rejected():
    with pytest.raises(ParamsError, match="cannot be used for problem_type 'classification'"):
        parse_run_options({**defaults(), "problem_type": "classification"})


def test_classification_options():
    options = parse_run_options(
        {**defaults(), "problem_type": "classification", "target": "expensive",
         "model": "logistic_regression", "hyperparameters": {"C": 0.5, "max_iter": 200}}
    )
    assert options.hyperparameters == {"C": 0.5, "max_iter": 200}
    assert {t.metric for t in options.gate.thresholds} == {"accuracy", "precision", "recall", "f1"}


def test_hyperparameter_of_another_model_is_rejected():
    with pytest.raises(ParamsError, match="'n_estimators' do not apply to ridge; it accepts alpha, seed"):
        parse_run_options({**defaults(), "model": "ridge", "hyperparameters": {"n_estimators": 10}})


def test_thresholds_of_the_other_problem_type_are_rejected():
    with pytest.raises(ParamsError, match="'accuracy' do not apply to regression"):
        parse_run_options({**defaults(), "thresholds": {"accuracy": "> 0.9"}})


def test_custom_thresholds_and_gate_options():
    options = parse_run_options(
        {**defaults(), "thresholds": {"r2_score": "> 0.7", "rmse": "<= 65000"},
         "champion_margin": 0.01, "decision_basis": "lower_bound", "leakage_tripwire": 0.15,
         "approval_mode": "manual", "raw_data_uri": "s3://other-bucket/data/"}
    )
    assert options.gate.thresholds == (Threshold("r2_score", ">", 0.7), Threshold("rmse", "<=", 65000.0))
    assert (options.gate.champion_margin, options.gate.decision_basis) == (0.01, "lower_bound")
    assert options.gate.leakage_max_improvement == 0.15
    assert options.approval_status == "PendingManualApproval"
    assert options.raw_data_uri == "s3://other-bucket/data/"


def test_empty_thresholds_object_is_rejected():
    with pytest.raises(ParamsError, match="non-empty"):
        parse_run_options({**defaults(), "thresholds": {}})


def test_deploy_params_accept_a_version_or_none():
    params = ParamsDict(deploy_params(["california_housing", "breast_cancer"], "california_housing"))
    params.validate()
    params["version"] = 3
    with pytest.raises(Exception, match="version"):
        params["version"] = 0


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        ({"alpha": "abc"}, "hyperparameter 'alpha' of ridge: expected a number >= 0, got 'abc'"),
        ({"alpha": -1}, "hyperparameter 'alpha' of ridge: expected a number >= 0, got -1"),
        ({"alpha": True}, "hyperparameter 'alpha' of ridge: expected a number >= 0, got True"),
        ({"seed": 1.5}, "hyperparameter 'seed' of ridge: expected an integer >= 0, got 1.5"),
    ],
)
def test_hyperparameter_values_are_checked_before_any_job(hyperparameters, message):
    with pytest.raises(ParamsError) as error:
        parse_run_options({**defaults(), "model": "ridge", "hyperparameters": hyperparameters})
    assert str(error.value) == message


def test_trigger_form_rejects_a_hyperparameter_of_the_wrong_type_naming_it():
    params = ParamsDict(pipeline_params())
    with pytest.raises(Exception, match="hyperparameters") as error:
        params["hyperparameters"] = {"alpha": "abc"}
    assert "alpha" in str(error.value)


def test_hyperparameters_keep_their_types_and_null_means_no_limit():
    options = parse_run_options(
        {**defaults(), "model": "random_forest", "hyperparameters": {"n_estimators": 50, "max_depth": None}}
    )
    assert options.hyperparameters == {"n_estimators": 50, "max_depth": None}


def test_data_options_are_typed_and_checked():
    options = parse_run_options(
        {**defaults(), "problem_type": "classification", "target": "label",
         "model": "logistic_regression", "drop_columns": ["id"], "categorical_columns": ["colour"],
         "positive_class": "yes", "feature_recipes": []}
    )
    assert options.data.drop_columns == ("id",)
    assert options.data.categorical_columns == ("colour",)
    assert options.data.numeric_columns is None
    assert options.data.positive_class == "yes"
    with pytest.raises(ParamsError, match="drop_columns lists the target column 'label'"):
        parse_run_options({**defaults(), "target": "label", "drop_columns": ["label"]})
    with pytest.raises(ParamsError, match="positive_class applies to classification only"):
        parse_run_options({**defaults(), "positive_class": "yes"})
    with pytest.raises(ParamsError, match=r"\['x'\] are declared both categorical and numeric"):
        parse_run_options({**defaults(), "categorical_columns": ["x"], "numeric_columns": ["x"]})


def test_spec_defaults_become_param_defaults():
    params = pipeline_params({"problem_type": "classification", "target": "diagnosis",
                              "model": "logistic_regression"})
    assert (params["problem_type"].value, params["target"].value) == ("classification", "diagnosis")
    assert params["serverless_memory_mb"].value == 2048
