"""What the Airflow side and the SageMaker containers must agree on, stated once.

- the model catalogue: each model's problem types, estimator and hyperparameters (type, range,
  default);
- the metric vocabulary per problem type: names, the primary metric, which direction is better,
  which ones training logs for SageMaker's MetricDefinitions;
- the block names of ``evaluation.json``.

``train.py`` and ``metrics.py`` import it inside the container (it sits beside them in the
source dir); the Airflow plugins import it as ``include.training.catalogue`` (the project root is
on every Airflow process's PYTHONPATH). It therefore imports nothing beyond the standard
library at module level: scikit-learn is imported only when an estimator is built, so parsing
a DAG never pays for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

PROBLEM_TYPES = ("regression", "classification")


class HyperparameterError(ValueError):
    """A hyperparameter a model does not take, or a value of the wrong type or range."""


@dataclass(frozen=True)
class Hyperparameter:
    """One tunable setting: ``kind`` is "int" or "float"; ``nullable`` means null = no limit."""

    name: str
    kind: str
    default: int | float | None
    minimum: float
    exclusive_minimum: bool = False
    maximum: float | None = None
    nullable: bool = False

    def expected(self) -> str:
        """What a valid value looks like, in words, for error messages and the trigger form."""
        kind = "an integer" if self.kind == "int" else "a number"
        bounds = [f"{'>' if self.exclusive_minimum else '>='} {self.minimum:g}"]
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        text = f"{kind} {' and '.join(bounds)}"
        return text + (" (or null: no limit)" if self.nullable else "")

    def parse(self, model: str, value: Any) -> int | float | None:
        """The typed value; raises HyperparameterError naming the parameter and what it expects."""
        if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none", "null"}):
            if self.nullable:
                return None
            if value is None or not value.strip():
                return self.default
            raise self._error(model, value)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self._error(model, value)
        try:
            number = float(value)
        except ValueError:
            raise self._error(model, value) from None
        if not math.isfinite(number) or (self.kind == "int" and not number.is_integer()):
            raise self._error(model, value)
        too_low = number <= self.minimum if self.exclusive_minimum else number < self.minimum
        if too_low or (self.maximum is not None and number > self.maximum):
            raise self._error(model, value)
        return int(number) if self.kind == "int" else number

    def _error(self, model: str, value: Any) -> HyperparameterError:
        return HyperparameterError(
            f"hyperparameter {self.name!r} of {model}: expected {self.expected()}, got {value!r}"
        )

    def json_schema(self) -> dict[str, Any]:
        """JSON schema of one value, as the trigger form's Param checks it."""
        kinds = ["integer" if self.kind == "int" else "number"] + (["null"] if self.nullable else [])
        schema: dict[str, Any] = {"type": kinds if len(kinds) > 1 else kinds[0]}
        schema["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return schema


SEED = Hyperparameter("seed", "int", 42, minimum=0)


@dataclass(frozen=True)
class ModelSpec:
    """A model of the catalogue; ``build(problem_type, values)`` returns the sklearn estimator."""

    name: str
    problem_types: tuple[str, ...]
    hyperparameters: tuple[Hyperparameter, ...]
    build: Callable[[str, Mapping[str, Any]], Any]

    @property
    def accepted(self) -> dict[str, Hyperparameter]:
        """Every hyperparameter the model takes, ``seed`` included."""
        return {h.name: h for h in (*self.hyperparameters, SEED)}

    def defaults(self) -> dict[str, Any]:
        return {name: h.default for name, h in self.accepted.items()}


def _linear_regression(problem_type: str, hp: Mapping[str, Any]) -> Any:
    from sklearn.linear_model import LinearRegression

    return LinearRegression()


def _ridge(problem_type: str, hp: Mapping[str, Any]) -> Any:
    from sklearn.linear_model import Ridge

    return Ridge(alpha=hp["alpha"])


def _logistic_regression(problem_type: str, hp: Mapping[str, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=hp["C"], max_iter=hp["max_iter"])


def _random_forest(problem_type: str, hp: Mapping[str, Any]) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestRegressor if problem_type == "regression" else RandomForestClassifier
    return cls(n_estimators=hp["n_estimators"], max_depth=hp["max_depth"],
               min_samples_leaf=hp["min_samples_leaf"], random_state=hp["seed"], n_jobs=-1)


def _hist_gradient_boosting(problem_type: str, hp: Mapping[str, Any]) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if problem_type == "regression" else HistGradientBoostingClassifier
    return cls(learning_rate=hp["learning_rate"], max_iter=hp["max_iter"], max_depth=hp["max_depth"],
               min_samples_leaf=hp["min_samples_leaf"], random_state=hp["seed"])


_MAX_DEPTH = Hyperparameter("max_depth", "int", None, minimum=1, nullable=True)
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("linear_regression", ("regression",), (), _linear_regression),
        ModelSpec("ridge", ("regression",),
                  (Hyperparameter("alpha", "float", 1.0, minimum=0),), _ridge),
        ModelSpec("logistic_regression", ("classification",),
                  (Hyperparameter("C", "float", 1.0, minimum=0, exclusive_minimum=True),
                   Hyperparameter("max_iter", "int", 1000, minimum=1)), _logistic_regression),
        ModelSpec("random_forest", PROBLEM_TYPES,
                  (Hyperparameter("n_estimators", "int", 100, minimum=1), _MAX_DEPTH,
                   Hyperparameter("min_samples_leaf", "int", 1, minimum=1)), _random_forest),
        ModelSpec("hist_gradient_boosting", PROBLEM_TYPES,
                  (Hyperparameter("learning_rate", "float", 0.1, minimum=0, exclusive_minimum=True),
                   Hyperparameter("max_iter", "int", 100, minimum=1), _MAX_DEPTH,
                   Hyperparameter("min_samples_leaf", "int", 20, minimum=1)),
                  _hist_gradient_boosting),
    )
}
DEFAULT_MODEL = {"regression": "linear_regression", "classification": "logistic_regression"}


def models_for(problem_type: str) -> list[str]:
    return [name for name, spec in MODELS.items() if problem_type in spec.problem_types]


def model_spec(model: str, problem_type: str) -> ModelSpec:
    """The catalogue entry; raises HyperparameterError if unknown or not for ``problem_type``."""
    if problem_type not in PROBLEM_TYPES:
        raise HyperparameterError(
            f"problem_type {problem_type!r} is not one of {', '.join(PROBLEM_TYPES)}"
        )
    if model not in MODELS:
        raise HyperparameterError(f"model {model!r} is not one of {', '.join(MODELS)}")
    spec = MODELS[model]
    if problem_type not in spec.problem_types:
        raise HyperparameterError(
            f"model {model!r} is a {'/'.join(spec.problem_types)} model and cannot be used for "
            f"problem_type {problem_type!r}; choose one of {', '.join(models_for(problem_type))}"
        )
    return spec


def parse_hyperparameters(model: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every hyperparameter of ``model``, typed and range-checked; defaults for the ones not given."""
    accepted = MODELS[model].accepted
    extra = sorted(set(given) - set(accepted))
    if extra:
        raise HyperparameterError(
            f"hyperparameter(s) {', '.join(map(repr, extra))} do not apply to {model}; it accepts "
            f"{', '.join(sorted(accepted))}"
        )
    return {name: h.parse(model, given[name]) if name in given else h.default
            for name, h in accepted.items()}


def hyperparameter_schema() -> dict[str, dict[str, Any]]:
    """Per name, the JSON schema of a value, over every model (a name means the same everywhere)."""
    schema: dict[str, dict[str, Any]] = {}
    for spec in MODELS.values():
        for name, h in spec.accepted.items():
            schema.setdefault(name, h.json_schema())
    return schema


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    logged: bool = True  # train.py logs it per split for SageMaker's MetricDefinitions


METRICS: dict[str, tuple[Metric, ...]] = {
    "regression": (Metric("r2_score", True), Metric("rmse", False), Metric("mae", False),
                   Metric("mse", False, logged=False)),
    "classification": (Metric("accuracy", True), Metric("precision", True), Metric("recall", True),
                       Metric("f1", True), Metric("auc", True)),
}
METRIC_NAMES: dict[str, tuple[str, ...]] = {p: tuple(m.name for m in ms) for p, ms in METRICS.items()}
LOGGED_METRICS: dict[str, tuple[str, ...]] = {
    p: tuple(m.name for m in ms if m.logged) for p, ms in METRICS.items()
}
PRIMARY_METRIC = {"regression": "r2_score", "classification": "f1"}
HIGHER_IS_BETTER: dict[str, bool] = {m.name: m.higher_is_better for ms in METRICS.values() for m in ms}
LOWER_IS_BETTER = frozenset(name for name, higher in HIGHER_IS_BETTER.items() if not higher)

# evaluation.json: SageMaker's model-quality block names, then this project's own blocks
EVALUATION_SCHEMA_VERSION = "1.0"
REGRESSION_BLOCK = "regression_metrics"
BINARY_BLOCK = "binary_classification_metrics"
MULTICLASS_BLOCK = "multiclass_classification_metrics"
METRIC_BLOCKS: dict[str, tuple[str, ...]] = {
    "regression": (REGRESSION_BLOCK,),
    "classification": (BINARY_BLOCK, MULTICLASS_BLOCK),
}
CHAMPION_BLOCK = "champion"
LOAD_CHECK_BLOCK = "load_check"
DATASET_BLOCK = "dataset"
SAMPLE_PREDICTIONS_BLOCK = "sample_predictions"


def metrics_block_name(problem_type: str, n_classes: int = 0) -> str:
    """The block evaluation.json holds the metrics in, e.g. ``binary_classification_metrics``."""
    if problem_type == "regression":
        return REGRESSION_BLOCK
    return BINARY_BLOCK if n_classes == 2 else MULTICLASS_BLOCK
