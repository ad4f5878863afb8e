"""Data sets nothing in include/training knows: preprocess -> train -> evaluate -> serving.

A CSV written here with made-up column names, string labels and an id column, and scikit-learn's
breast-cancer data with its labels spelled out, go through the real scripts with no option but the
target and problem type (and, for the first, a declared positive class).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from inference import PayloadError, input_fn, model_fn, output_fn, predict_fn
from sklearn import metrics as skm
from training_support import TEST_BOOTSTRAP, Container, Trained, birds, prepare


def _evaluate(root: Path, trained: Trained) -> dict:
    c = Container(root)
    result = c.run("evaluate.py", "--model-dir", str(trained.tarball_dir),
                   "--test-dir", str(trained.splits / "test"), *TEST_BOOTSTRAP)
    assert result.returncode == 0, result.stderr
    return json.loads((c.opt_ml / "processing" / "evaluation" / "evaluation.json").read_text())


def _serve(model, body: str, content_type: str = "text/csv") -> dict:
    return json.loads(output_fn(predict_fn(input_fn(body, content_type), model), "application/json")[0])


@pytest.fixture(scope="module")
def trained_birds(tmp_path_factory) -> tuple[Trained, dict, dict]:
    root = tmp_path_factory.mktemp("birds")
    pre = ["--target", "status", "--problem-type", "classification", "--positive-class", "migrant"]
    trained = prepare(root, birds(), pre, [], "status")  # train.py gets the schema from its channel
    profile = json.loads((trained.splits / "profile" / "profile.json").read_text())
    return trained, profile, _evaluate(root, trained)


def test_schema_is_inferred_and_the_id_column_dropped(trained_birds) -> None:
    trained, profile, _ = trained_birds
    schema = profile["schema"]
    assert [(f["name"], f["kind"]) for f in schema["features"]] == [
        ("wingspan_cm", "numeric"), ("habitat", "categorical"), ("mass_g", "numeric"),
        ("clutch", "numeric")]
    assert schema["features"][1]["categories"] == ["coast", "forest", "marsh"]
    assert schema["dropped"] == [{"name": "ring_code",
                                  "reason": "identifier: a different text value on every row"}]
    assert any("'ring_code' dropped" in w for w in profile["warnings"])
    assert schema["labels"] == ["migrant", "resident"]
    assert (schema["positive_class"], schema["positive_class_rule"]) == ("migrant",
                                                                        "declared (--positive-class)")
    assert schema["feature_recipes"] == [] and schema["derived_features"] == []
    for split in ("train", "validation", "test"):
        columns = pd.read_csv(next((trained.splits / split).glob("*.csv"))).columns.tolist()
        assert columns == ["wingspan_cm", "habitat", "status", "mass_g", "clutch"]


def test_model_metadata_and_evaluation_carry_the_schema(trained_birds) -> None:
    trained, profile, evaluation = trained_birds
    meta = json.loads((trained.model_dir / "model_metadata.json").read_text())
    assert meta["target"] == "status" and meta["problem_type"] == "classification"
    assert meta["classes"] == ["migrant", "resident"] and meta["positive_class"] == "migrant"
    assert meta["schema"] == profile["schema"]
    assert evaluation["schema"] == meta["schema"] and evaluation["positive_class"] == "migrant"

    # binary metrics are about the declared positive class, as sklearn computes them
    block = evaluation["binary_classification_metrics"]
    test = pd.read_csv(next((trained.splits / "test").glob("*.csv")))
    answer = _serve(model_fn(str(trained.model_dir)), test.drop(columns="status").to_csv(index=False))
    y, pred = test["status"], answer["predictions"]
    assert set(pred) <= {"migrant", "resident"}  # the labels, not codes
    assert block["recall"]["value"] == pytest.approx(skm.recall_score(y, pred, pos_label="migrant"))
    assert block["precision"]["value"] == pytest.approx(skm.precision_score(y, pred, pos_label="migrant"))
    migrant = np.array(answer["probabilities"])[:, answer["classes"].index("migrant")]
    assert block["auc"]["value"] == pytest.approx(skm.roc_auc_score(y == "migrant", migrant))
    assert block["auc"]["value"] > 0.8
    assert set(block["confusion_matrix"]) == {"migrant", "resident"}
    assert evaluation["sample_predictions"]["columns"] == ["wingspan_cm", "habitat", "mass_g", "clutch"]


def test_endpoint_checks_requests_against_the_schema(trained_birds) -> None:
    trained, _, _ = trained_birds
    model = model_fn(str(trained.model_dir))
    row = {"wingspan_cm": 120.5, "habitat": "coast", "mass_g": None, "clutch": 3}
    assert _serve(model, json.dumps(row), "application/json")["predictions"][0] in ("migrant", "resident")
    assert _serve(model, "120.5,coast,,3\n")["predictions"][0] in ("migrant", "resident")  # file order
    cases = [
        ({**row, "ring_code": "R-1"}, "row 1: unexpected field(s) ['ring_code']; the model takes exactly "
                                      "['wingspan_cm', 'habitat', 'mass_g', 'clutch']"),
        ({k: v for k, v in row.items() if k != "habitat"}, "row 1: missing field(s) ['habitat']"),
        ({**row, "wingspan_cm": "wide"}, "row 1 column 'wingspan_cm': expected a number, got 'wide'"),
    ]
    for body, expected in cases:
        with pytest.raises(PayloadError) as info:
            _serve(model, json.dumps(body), "application/json")
        assert str(info.value).startswith(expected) and info.value.status_code == 400


def test_breast_cancer_with_label_names(tmp_path: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.data.assign(diagnosis=np.where(data.target == 0, "malignant", "benign"))
    common = ["--target", "diagnosis", "--problem-type", "classification"]
    trained = prepare(tmp_path, frame, common, common, "diagnosis")
    evaluation = _evaluate(tmp_path, trained)
    schema = evaluation["schema"]
    assert len(schema["features"]) == 30 and {f["kind"] for f in schema["features"]} == {"numeric"}
    assert schema["dropped"] == []
    assert evaluation["positive_class"] == "malignant"  # the documented default: last in sorted order
    assert schema["positive_class_rule"].startswith("last label in sorted order")
    assert evaluation["binary_classification_metrics"]["auc"]["value"] > 0.95
    assert set(evaluation["sample_predictions"]["predictions"]) <= {"malignant", "benign"}
