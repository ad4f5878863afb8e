"""evaluate.py end to end: evaluation.json layout, champion comparison, charts, report, bad artifacts."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from training_support import TEST_BOOTSTRAP, TRAINING, Container, Trained, tar_model


def _evaluate(c: Container, model: Trained, champion_dir: Path | None = None, *args: str):
    test_dir = model.splits / "test"
    argv = ["--model-dir", str(model.tarball_dir), "--test-dir", str(test_dir), *TEST_BOOTSTRAP, *args]
    if champion_dir is not None:
        argv += ["--champion-dir", str(champion_dir)]
    result = c.run("evaluate.py", *argv)
    out = c.opt_ml / "processing" / "evaluation"
    evaluation = json.loads((out / "evaluation.json").read_text()) if result.returncode == 0 else None
    return result, evaluation, out


def _check_metric_block(block: dict, names: tuple[str, ...]) -> None:
    for name in names:
        m = block[name]
        ci = m["confidence_interval"]
        assert ci["level"] == 0.95 and ci["lower"] <= m["value"] <= ci["upper"], (name, m)
        assert m["standard_deviation"] > 0


def test_regression_candidate_vs_champion(container: Container, regression_hgb: Trained,
                                          regression_linear: Trained) -> None:
    result, ev, out = _evaluate(container, regression_hgb, regression_linear.tarball_dir,
                                "--champion-model-uri", "s3://bucket/champion/model.tar.gz")
    assert result.returncode == 0, result.stderr
    assert ev["schema_version"] == "1.0" and ev["problem_type"] == "regression"
    assert ev["target"] == "median_house_value" and ev["primary_metric"] == "r2_score"
    names = ("r2_score", "rmse", "mae", "mse")
    assert set(ev["regression_metrics"]) == set(names)
    _check_metric_block(ev["regression_metrics"], names)

    # point values equal sklearn.metrics on the same rows, computed here independently
    import sys

    sys.path.insert(0, str(TRAINING))
    test = pd.read_csv(next((regression_hgb.splits / "test").glob("*.csv")))
    y = test["median_house_value"].to_numpy()
    for trained, block in ((regression_hgb, ev["regression_metrics"]),
                           (regression_linear, ev["champion"]["regression_metrics"])):
        pred = joblib.load(trained.model_dir / "model.joblib").predict(test.drop(columns="median_house_value"))
        assert block["r2_score"]["value"] == pytest.approx(skm.r2_score(y, pred), rel=1e-5)
        assert block["mae"]["value"] == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-5)
        assert block["rmse"]["value"] ** 2 == pytest.approx(block["mse"]["value"], rel=1e-9)

    champ = ev["champion"]
    assert champ["model_uri"] == "s3://bucket/champion/model.tar.gz"
    _check_metric_block(champ["regression_metrics"], names)
    delta = champ["delta"]
    assert delta["metric"] == "r2_score"
    assert delta["value"] == pytest.approx(ev["regression_metrics"]["r2_score"]["value"]
                                           - champ["regression_metrics"]["r2_score"]["value"])
    # paired interval: far narrower than the two separate intervals, and clearly above zero here
    assert 0 < delta["confidence_interval"]["lower"] < delta["value"] < delta["confidence_interval"]["upper"]

    assert ev["load_check"]["passed"] is True and ev["load_check"]["rows"] == 5
    assert ev["dataset"]["test_rows"] == len(test) and len(ev["dataset"]["test_sha256"]) == 64
    samples = ev["sample_predictions"]
    assert samples["columns"] == [c for c in test.columns if c != "median_house_value"]
    assert len(samples["rows"]) == len(samples["predictions"]) == 5
    # the deploy smoke check sends these rows to the endpoint and expects these predictions
    from inference import input_fn, model_fn, output_fn, predict_fn

    served = model_fn(str(regression_hgb.model_dir))
    body = json.dumps({"instances": samples["rows"]})
    answer, _ = output_fn(predict_fn(input_fn(body, "application/json"), served), "application/json")
    assert json.loads(answer)["predictions"] == pytest.approx(samples["predictions"], rel=1e-9)
    assert ev["bootstrap"] == {"samples": 200, "seed": 42, "level": 0.95,
                               "rows_per_replicate": len(test), "method": "index resampling"}

    report = (out / "report.html").read_text()
    # predicted vs actual for each model, residuals vs predicted, residual histogram
    assert report.count("<svg ") == 4 and report.count("</svg>") == 4
    for title in ("candidate: predicted vs actual", "champion: predicted vs actual",
                  "residuals vs predicted", "residual distribution"):
        assert f"<title>{title}</title>" in report
    assert not list(out.glob("*.png"))
    assert "http://" not in report and "https://" not in report  # self-contained
    assert "Candidate − champion" in report


def test_no_champion_when_dir_missing_or_empty(container: Container, regression_linear: Trained,
                                               tmp_path: Path) -> None:
    result, ev, _ = _evaluate(container, regression_linear, tmp_path / "absent")
    assert result.returncode == 0, result.stderr
    assert ev["champion"] is None
    assert 0.6 < ev["regression_metrics"]["r2_score"]["value"] < 0.7
    (tmp_path / "empty").mkdir()
    assert container.call("evaluate.py", "--model-dir", str(regression_linear.tarball_dir),
                          "--test-dir", str(regression_linear.splits / "test"),
                          "--champion-dir", str(tmp_path / "empty"), *TEST_BOOTSTRAP) == 0
    again = json.loads((container.opt_ml / "processing/evaluation/evaluation.json").read_text())
    assert again["champion"] is None
    assert again["regression_metrics"] == ev["regression_metrics"]  # seeded: identical intervals


def test_binary_classification(container: Container, binary_logistic: Trained) -> None:
    result, ev, out = _evaluate(container, binary_logistic)
    assert result.returncode == 0, result.stderr
    assert ev["primary_metric"] == "f1" and "regression_metrics" not in ev
    block = ev["binary_classification_metrics"]
    names = ("accuracy", "precision", "recall", "f1", "auc")
    _check_metric_block(block, names)
    matrix = block["confusion_matrix"]
    assert set(matrix) == {"0", "1"} and all(set(row) == {"0", "1"} for row in matrix.values())
    assert sum(sum(row.values()) for row in matrix.values()) == ev["dataset"]["test_rows"]
    correct = matrix["0"]["0"] + matrix["1"]["1"]
    assert block["accuracy"]["value"] == pytest.approx(correct / ev["dataset"]["test_rows"])
    assert block["auc"]["value"] > 0.85
    assert all(p in (0, 1) for p in ev["sample_predictions"]["predictions"])
    report = (out / "report.html").read_text()
    assert report.count("<svg ") == 2 and "<title>ROC</title>" in report
    assert "<title>confusion matrix (candidate)</title>" in report
    for row in matrix.values():  # every count is written in its cell
        for count in row.values():
            assert f">{count:,}</text>" in report


def test_multiclass_classification_with_champion(container: Container, multiclass_forest: Trained) -> None:
    result, ev, _ = _evaluate(container, multiclass_forest, multiclass_forest.tarball_dir,
                              "--primary-metric", "accuracy")
    assert result.returncode == 0, result.stderr
    block = ev["multiclass_classification_metrics"]
    _check_metric_block(block, ("accuracy", "precision", "recall", "f1", "auc"))
    assert set(block["confusion_matrix"]) == {"high", "low", "mid"}
    # the same model as champion: the paired difference is exactly zero on every replicate
    delta = ev["champion"]["delta"]
    assert delta["metric"] == "accuracy" and delta["value"] == 0
    assert delta["confidence_interval"]["lower"] == delta["confidence_interval"]["upper"] == 0


def _bad_tarball(tmp_path: Path, kind: str, trained: Trained) -> Path:
    folder = tmp_path / kind
    folder.mkdir()
    if kind == "corrupt":
        (folder / "model.tar.gz").write_bytes(b"\x1f\x8b\x08 definitely not a tarball")
    elif kind == "truncated":
        data = trained.tarball_dir.joinpath("model.tar.gz").read_bytes()
        (folder / "model.tar.gz").write_bytes(data[: len(data) // 2])
    elif kind == "no-joblib":
        with tarfile.open(folder / "model.tar.gz", "w:gz") as tar:
            tar.add(trained.model_dir / "model_metadata.json", arcname="model_metadata.json")
    elif kind == "not-a-model":
        bogus = tmp_path / "bogus-model"
        bogus.mkdir()
        joblib.dump({"weights": [1, 2]}, bogus / "model.joblib")
        (bogus / "model_metadata.json").write_text((trained.model_dir / "model_metadata.json").read_text())
        tar_model(bogus, folder)
    return folder


@pytest.mark.parametrize("kind, expected", [
    ("missing", "no model.tar.gz in"),
    ("corrupt", "corrupt or unreadable model tarball"),
    ("truncated", "corrupt or unreadable model tarball"),
    ("no-joblib", "model.joblib missing from the model artifact"),
    ("not-a-model", "holds a dict, not a model"),
])
def test_bad_model_artifact(kind: str, expected: str, container: Container, tmp_path: Path,
                            regression_linear: Trained) -> None:
    model_dir = _bad_tarball(tmp_path, kind, regression_linear)
    args = ("--model-dir", str(model_dir), "--test-dir", str(regression_linear.splits / "test"))
    if kind == "corrupt":  # one through a real process: exit code and message file
        assert container.run("evaluate.py", *args).returncode == 1
    else:
        assert container.call("evaluate.py", *args) == 1
    assert expected in container.failure("processing")


def test_bad_champion_and_test_data(container: Container, tmp_path: Path, regression_linear: Trained,
                                    binary_logistic: Trained) -> None:
    base = ["--model-dir", str(regression_linear.tarball_dir), *TEST_BOOTSTRAP]
    bad_champion = _bad_tarball(tmp_path, "corrupt", regression_linear)
    code = container.call("evaluate.py", *base, "--test-dir", str(regression_linear.splits / "test"),
                           "--champion-dir", str(bad_champion))
    assert code == 1 and "champion artifact unusable" in container.failure("processing")

    code = container.call("evaluate.py", *base, "--test-dir", str(regression_linear.splits / "test"),
                           "--champion-dir", str(binary_logistic.tarball_dir))
    assert code == 1
    assert "champion problem_type 'classification' differs" in container.failure("processing")

    test = pd.read_csv(next((regression_linear.splits / "test").glob("*.csv")))
    no_target = tmp_path / "no-target"
    no_target.mkdir()
    test.drop(columns="median_house_value").to_csv(no_target / "t.csv", index=False)
    assert container.call("evaluate.py", *base, "--test-dir", str(no_target)) == 1
    assert "lacks column(s) ['median_house_value']" in container.failure("processing")

    code = container.call("evaluate.py", *base, "--test-dir", str(regression_linear.splits / "test"),
                           "--primary-metric", "f1")
    assert code == 1 and "'f1' is not a regression metric" in container.failure("processing")


def test_rows_without_target_are_dropped_and_counted(container: Container, tmp_path: Path,
                                                     regression_linear: Trained) -> None:
    test = pd.read_csv(next((regression_linear.splits / "test").glob("*.csv"))).head(400)
    test.loc[[3, 7], "median_house_value"] = np.nan
    folder = tmp_path / "t"
    folder.mkdir()
    test.to_csv(folder / "t.csv.gz", index=False, compression="gzip")
    code = container.call("evaluate.py", "--model-dir", str(regression_linear.tarball_dir),
                          "--test-dir", str(folder), "--chunk-rows", "64", *TEST_BOOTSTRAP)
    assert code == 0
    ev = json.loads((container.opt_ml / "processing/evaluation/evaluation.json").read_text())
    assert ev["dataset"]["test_rows"] == 398
    assert ev["dataset"]["dropped_rows"]["missing_target"] == 2


def test_help_runs_standalone(container: Container) -> None:
    result = container.run("evaluate.py", "--help")
    assert result.returncode == 0 and "--champion-dir" in result.stdout
