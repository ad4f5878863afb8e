"""Slice options: trigger-form Params, their cross-checks, the plan's evaluate arguments and the
raw-header check that runs before any job."""

from __future__ import annotations

import gzip
import json

import pytest
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import ParamValidationError
from sagemaker_mlops import job_configs, naming
from sagemaker_mlops.params import pipeline_params
from sagemaker_mlops.plan import RunPlan, build_plan
from sagemaker_mlops.run_options import ParamsError, parse_run_options
from sagemaker_mlops.settings import PROJECT_ROOT, load_settings
from sagemaker_mlops.slice_options import csv_header, missing_columns
from sagemaker_mlops.specs import load_spec

HOUSING = load_spec(PROJECT_ROOT / "dags" / "pipelines" / "california_housing.yaml")
RUN_ID = "manual__2026-11-23T17:00:00+00:00"


def params(**overrides):
    return {**{n: p.value for n, p in pipeline_params(HOUSING.params).items()}, **overrides}


def test_slice_params_default_off_and_the_housing_spec_slices_by_ocean_proximity():
    ParamsDict(pipeline_params()).validate()
    plain = parse_run_options({n: p.value for n, p in pipeline_params().items()})
    assert plain.slice_columns == ()
    assert (plain.gate.slice_min_metric, plain.gate.slice_max_regression) == (None, None)
    assert plain.gate.slice_min_rows == 30
    housing = parse_run_options(params())
    assert housing.slice_columns == ("ocean_proximity",)
    for name in ("slice_columns", "slice_min_rows", "slice_min_metric", "slice_max_regression"):
        assert pipeline_params()[name].schema["section"] == "Slices"


def test_slice_rules_reach_the_gate_policy():
    options = parse_run_options(params(slice_min_metric=0.5, slice_max_regression=0.05, slice_min_rows=50))
    assert (options.gate.slice_min_metric, options.gate.slice_max_regression,
            options.gate.slice_min_rows) == (0.5, 0.05, 50)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"slice_columns": [], "slice_min_metric": 0.5}, "slice_min_metric need slice_columns"),
    ({"slice_columns": ["median_house_value"]}, "slice_columns lists the target column 'median_house_value'"),
    ({"slice_columns": ["ocean_proximity"], "drop_columns": ["ocean_proximity"]},
     r"slice column\(s\) \['ocean_proximity'\] are in drop_columns"),
])
def test_impossible_slice_options_are_named_at_trigger_time(overrides, message):
    with pytest.raises(ParamsError, match=message):
        parse_run_options(params(**overrides))


@pytest.mark.parametrize(("name", "value"), [("slice_max_regression", -0.1), ("slice_min_rows", 0),
                                             ("slice_columns", "ocean_proximity")])
def test_the_trigger_form_rejects_bad_single_values(name, value):
    # ParamValidationError is a ValueError on Airflow 3.3, an AirflowException on 3.2 (MWAA)
    with pytest.raises((ValueError, ParamValidationError), match="Failed validating"):
        pipeline_params()[name].resolve(value)


def test_the_plan_passes_slice_columns_and_min_rows_to_evaluate():
    settings = load_settings(environ={"MLOPS_BUCKET": "b"})
    plan = build_plan(params(slice_min_rows=40), RUN_ID, settings, HOUSING)
    assert plan.slice_arguments() == ["--slice-columns", "ocean_proximity", "--slice-min-rows", "40"]
    again = RunPlan.from_xcom(json.loads(json.dumps(plan.to_xcom())))
    assert again.slice_arguments() == plan.slice_arguments()
    layout = naming.RunLayout("b", "p", RUN_ID)
    request = job_configs.evaluate_config(
        name="e", layout=layout, model_artifact="s3://b/m.tar.gz", champion_artifact="s3://b/c.tar.gz",
        image_uri="i", role_arn="arn:aws:iam::1:role/r", instance_type="ml.m5.large",
        slice_arguments=plan.slice_arguments())
    assert request["AppSpecification"]["ContainerArguments"] == [
        "--champion-model-uri", "s3://b/c.tar.gz", "--slice-columns", "ocean_proximity",
        "--slice-min-rows", "40"]
    assert build_plan(params(slice_columns=[]), RUN_ID, settings, HOUSING).slice_arguments() == []


def test_raw_header_is_read_from_a_prefix_of_plain_and_gzipped_csv():
    text = b"longitude,latitude,ocean_proximity,median_house_value\n-122.2,37.8,NEAR BAY,452600\n" * 2000
    assert csv_header(text[:100], "raw/a.csv")[2] == "ocean_proximity"
    packed = gzip.compress(text)
    assert csv_header(packed[:200], "raw/a.csv.gz") == [
        "longitude", "latitude", "ocean_proximity", "median_house_value"]
    assert csv_header(b"\xef\xbb\xbf\"a b\",c\r\n1,2", "x.csv") == ["a b", "c"]


def test_a_slice_column_missing_from_the_raw_data_is_named():
    header = ["longitude", "ocean_proximity", "median_house_value"]
    assert missing_columns(["ocean_proximity"], header, "s3://b/raw/a.csv") is None
    message = missing_columns(["ocean_proximty"], header, "s3://b/raw/a.csv")
    assert message == ("slice column(s) ['ocean_proximty'] not found in the raw data "
                       "(s3://b/raw/a.csv has columns longitude, ocean_proximity, "
                       "median_house_value); fix slice_columns")
