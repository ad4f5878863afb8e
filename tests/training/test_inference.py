"""Serving handlers on a trained artifact: payload shapes, answers, and 4xx errors for bad payloads."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
from inference import PayloadError, input_fn, model_fn, output_fn, predict_fn
from training_support import PYTHON, TRAINING, Trained


@pytest.fixture(scope="module")
def model(regression_linear: Trained):
    return model_fn(str(regression_linear.model_dir))


@pytest.fixture(scope="module")
def rows(regression_linear: Trained) -> pd.DataFrame:
    test = pd.read_csv(next((regression_linear.splits / "test").glob("*.csv")))
    return test.drop(columns="median_house_value").head(4)


def _serve(model, body, content_type, accept="application/json"):
    return output_fn(predict_fn(input_fn(body, content_type), model), accept)


def _predictions(model, rows):
    return [float(v) for v in model.pipeline.predict(rows)]


def test_csv_with_and_without_header(model, rows) -> None:
    expected = _predictions(model, rows)
    with_header = rows.to_csv(index=False)
    without = rows.to_csv(index=False, header=False)
    for body in (with_header, without.encode(), with_header.replace("\n", "\r\n")):
        answer, kind = _serve(model, body, "text/csv; charset=utf-8")
        assert kind == "application/json"
        assert json.loads(answer)["predictions"] == pytest.approx(expected)
    answer, kind = _serve(model, without, "text/csv", accept="text/csv")
    assert kind == "text/csv"
    assert [float(v) for v in answer.splitlines()] == pytest.approx(expected)


def test_csv_header_in_another_order(model, rows) -> None:
    shuffled = rows[list(reversed(rows.columns))]
    answer, _ = _serve(model, shuffled.to_csv(index=False), "text/csv")
    assert json.loads(answer)["predictions"] == pytest.approx(_predictions(model, rows))


def test_json_shapes(model, rows) -> None:
    expected = _predictions(model, rows)
    records = json.loads(rows.to_json(orient="records"))
    bodies = [
        json.dumps(records),
        json.dumps({"instances": records}),
        json.dumps({"instances": rows.values.tolist()}),
        json.dumps(rows.values.tolist()),
        json.dumps(json.loads(rows.to_json(orient="split", index=False))),
    ]
    for body in bodies:
        answer, _ = _serve(model, body, "application/json")
        assert json.loads(answer)["predictions"] == pytest.approx(expected), body[:60]
    single, _ = _serve(model, json.dumps(records[0]), "application/json")
    assert json.loads(single)["predictions"] == pytest.approx(expected[:1])


def test_missing_values_are_imputed(model, rows) -> None:
    body = rows.head(1).assign(total_bedrooms=None).to_json(orient="records")
    answer, _ = _serve(model, body, "application/json")
    assert len(json.loads(answer)["predictions"]) == 1


@pytest.mark.parametrize("body, content_type, status, expected", [
    ("", "text/csv", 400, "empty request body"),
    ("   \n", "application/json", 400, "empty request body"),
    ("1,2,3\n", "text/csv", 400, "row 1 has 3 values, expected 9"),
    ("-122,37,20,1000,200,500,abc,3.1,NEAR BAY\n", "text/csv", 400,
     "row 1 column 'households': expected a number, got 'abc'"),
    ('{"longitude": -122}', "application/json", 400, "row 1: missing field(s)"),
    ("{not json", "application/json", 400, "invalid JSON payload"),
    ("a,b", "application/x-parquet", 415, "unsupported content type"),
    ("longitude,latitude\n-122,37\n", "text/csv", 400, "missing column(s)"),
])
def test_bad_payloads_are_client_errors(model, body, content_type, status, expected) -> None:
    with pytest.raises(PayloadError) as info:
        _serve(model, body, content_type)
    assert info.value.status_code == status
    assert expected in str(info.value)
    assert "Traceback" not in str(info.value)
    assert isinstance(info.value, ValueError)  # what serving stacks treat as the caller's fault


def _error(model, body: str, content_type: str) -> str:
    with pytest.raises(PayloadError) as info:
        _serve(model, body, content_type)
    assert info.value.status_code == 400 and "\n" not in str(info.value)
    return str(info.value)


def test_requests_are_checked_against_the_schema(model, rows) -> None:
    features = list(rows.columns)
    extra = rows.head(1).assign(median_house_value=1.0, notes="x")
    assert _error(model, extra.to_csv(index=False), "text/csv") == (
        f"unexpected column(s) ['median_house_value', 'notes']; the model takes exactly {features}")
    record = json.loads(rows.head(2).to_json(orient="records"))
    record[1]["colour"] = "red"
    assert _error(model, json.dumps(record), "application/json").startswith(
        "row 2: unexpected field(s) ['colour']; the model takes exactly")
    missing = rows.head(1).drop(columns=["latitude"])
    assert _error(model, missing.to_csv(index=False), "text/csv").startswith(
        "missing column(s) ['latitude']; the model takes exactly")
    record = json.loads(rows.head(1).to_json(orient="records"))[0]
    for value, shown in ((["1"], "['1']"), ({"v": 1}, "{'v': 1}"), (True, "True"), ("many", "'many'")):
        message = _error(model, json.dumps({**record, "population": value}), "application/json")
        assert message == f"row 1 column 'population': expected a number, got {shown}"
    message = _error(model, json.dumps({**record, "ocean_proximity": ["NEAR BAY"]}), "application/json")
    assert message == "row 1 column 'ocean_proximity': expected a category (text), got ['NEAR BAY']"
    number_as_text = {**record, "population": "1200"}  # CSV-like strings of numbers are fine
    assert len(json.loads(_serve(model, json.dumps(number_as_text), "application/json")[0])["predictions"]) == 1


def test_unsupported_accept(model, rows) -> None:
    with pytest.raises(PayloadError) as info:
        _serve(model, rows.to_csv(index=False), "text/csv", accept="application/xml")
    assert info.value.status_code == 406


def test_classifier_answers_labels_and_probabilities(multiclass_forest: Trained) -> None:
    model = model_fn(str(multiclass_forest.model_dir))
    test = pd.read_csv(next((multiclass_forest.splits / "test").glob("*.csv")))
    answer, _ = _serve(model, test.drop(columns="band").head(3).to_csv(index=False), "text/csv")
    body = json.loads(answer)
    assert body["classes"] == ["high", "low", "mid"]
    assert all(p in body["classes"] for p in body["predictions"])
    assert all(sum(row) == pytest.approx(1) for row in body["probabilities"])


def test_command_line(regression_linear: Trained, rows) -> None:
    result = subprocess.run([PYTHON, str(TRAINING / "inference.py"), "--model-dir",
                             str(regression_linear.model_dir), "--accept", "text/csv"],
                            input=rows.to_csv(index=False), capture_output=True, text=True, check=True)
    assert len(result.stdout.splitlines()) == 4
