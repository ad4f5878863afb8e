"""The catalogue is the one statement of models, hyperparameters and metrics both sides use."""

from __future__ import annotations

import catalogue
import pytest
import train

from include.training import catalogue as plugin_side_catalogue


def test_both_import_paths_read_the_same_file():
    assert plugin_side_catalogue.__file__ == catalogue.__file__
    assert plugin_side_catalogue.METRIC_NAMES == catalogue.METRIC_NAMES


def test_a_hyperparameter_name_means_the_same_in_every_model():
    for name in catalogue.hyperparameter_schema():
        schemas = {str(s.accepted[name].json_schema()) for s in catalogue.MODELS.values()
                   if name in s.accepted}
        assert len(schemas) == 1, name


@pytest.mark.parametrize(
    ("model", "problem_type"),
    [(m, p) for m, spec in catalogue.MODELS.items() for p in spec.problem_types],
)
def test_every_model_builds_with_its_defaults(model, problem_type):
    estimator = catalogue.MODELS[model].build(problem_type, catalogue.MODELS[model].defaults())
    assert hasattr(estimator, "fit")
    kind = "Regressor" if problem_type == "regression" else "Classifier"
    if model not in ("linear_regression", "ridge", "logistic_regression"):
        assert type(estimator).__name__.endswith(kind)


def test_train_accepts_every_catalogue_hyperparameter_as_an_option():
    parser = train.build_parser()
    for name in catalogue.hyperparameter_schema():
        assert parser.parse_args([f"--{name}", "1"]).__dict__[name] == "1"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("3", 3), (3.0, 3), ("null", None), (None, None), ("  7 ", 7)],
)
def test_integer_values_and_null_for_no_limit(value, parsed):
    assert catalogue.parse_hyperparameters("random_forest", {"max_depth": value})["max_depth"] == parsed


def test_each_problem_type_has_a_primary_metric_among_its_metrics():
    for problem_type, names in catalogue.METRIC_NAMES.items():
        assert catalogue.PRIMARY_METRIC[problem_type] in names
        assert set(catalogue.LOGGED_METRICS[problem_type]) <= set(names)
    assert catalogue.metrics_block_name("classification", 2) == "binary_classification_metrics"
    assert catalogue.metrics_block_name("classification", 3) == "multiclass_classification_metrics"
