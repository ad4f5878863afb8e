"""The data set's schema, inferred from the data and carried from preprocess to the endpoint.

Nothing here knows a data set: features are every column except the target and the declared drop
columns; numeric vs categorical comes from the values unless declared. preprocess infers the schema
once, writes it to ``profile.json`` and as ``schema.json`` beside the train split (so the training
job reads the same decisions instead of guessing again), train stores it in the model metadata,
evaluate copies it into ``evaluation.json`` and the endpoint checks requests against it.

Positive class of a binary label (used by precision, recall, f1 and AUC): the declared
``--positive-class``, else the last of the two labels in sorted order, which is scikit-learn's
``classes_[1]``: 1 of {0, 1}, "True" of {"False", "True"}, "yes" of {"no", "yes"}, "malignant" of
{"benign", "malignant"}. Declare it whenever that rule picks the wrong one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from derived import recipe_features
from failure import InputError
from schema import Cleaned, clean_frame, infer_categorical

SCHEMA_FILE = "schema.json"
SCHEMA_VERSION = "1.0"
MAX_CATEGORIES_RECORDED = 200  # a free-text column can have thousands; the count is always kept
MIN_ROWS_FOR_ID = 20  # below this, every text column of a tiny sample looks unique per row
POSITIVE_RULE_DECLARED = "declared (--positive-class)"
POSITIVE_RULE_DEFAULT = "last label in sorted order (scikit-learn's classes_[1])"


@dataclass
class DatasetSchema:
    """What a model was trained on: features in file order with their kind, labels, recipes."""

    target: str
    problem_type: str
    features: list[dict]  # {"name", "kind": "numeric"|"categorical", ["categories", "n_categories"]}
    dropped: list[dict] = field(default_factory=list)  # {"name", "reason"}
    labels: list | None = None
    positive_class: object = None
    positive_class_rule: str | None = None
    feature_recipes: list[str] = field(default_factory=list)
    derived_features: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    schema_version: str = SCHEMA_VERSION

    @property
    def names(self) -> list[str]:
        return [f["name"] for f in self.features]

    @property
    def numeric(self) -> list[str]:
        return [f["name"] for f in self.features if f["kind"] == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [f["name"] for f in self.features if f["kind"] == "categorical"]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str) -> DatasetSchema:
        try:
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            schema = cls(**known)
            for f in schema.features:
                if f["kind"] not in ("numeric", "categorical"):
                    raise ValueError(f"feature {f['name']!r} has kind {f['kind']!r}")
        except (TypeError, KeyError, ValueError) as exc:
            raise InputError(f"{source}: not a valid data set schema ({exc})") from exc
        return schema


def split_names(value: str | None) -> list[str]:
    """A comma-separated option as a list of names ('' or None: none)."""
    return [c.strip() for c in (value or "").split(",") if c.strip()]


def check_declared(columns: list[str], target: str, declared: dict[str, list[str]],
                   source: str) -> None:
    """Every declared column exists, is not the target and is declared for one role only."""
    if target not in columns:
        raise InputError(f"{source}: target column {target!r} not found; the header has {columns}")
    seen: dict[str, str] = {}
    for option, names in declared.items():
        missing = [c for c in names if c not in columns]
        if missing:
            raise InputError(f"{option} names column(s) {missing} that {source} does not have; "
                             f"the header has {columns}")
        if target in names:
            raise InputError(f"{option} names the target column {target!r}; remove it from {option}")
        for name in names:
            if name in seen:
                raise InputError(f"column {name!r} is in both {seen[name]} and {option}; keep one")
            seen[name] = option


def identifier_columns(frame: pd.DataFrame, candidates: list[str]) -> list[str]:
    """Text columns whose value differs on every row (an id): useless as features, and a trap
    because the model would memorise them."""
    if len(frame) < MIN_ROWS_FOR_ID:
        return []
    out = []
    for col in candidates:
        values = frame[col]
        if values.notna().all() and values.nunique() == len(values):
            out.append(col)
    return out


def column_warnings(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> list[str]:
    """Columns kept as features that are probably not what the user meant."""
    warnings = []
    for col in numeric + categorical:
        values = frame[col].dropna()
        constant = (values.min() == values.max()) if col in numeric else values.nunique() == 1
        if len(values) and constant:
            warnings.append(f"column {col!r} has one value ({_plain(values.iloc[0])!r}) in every "
                            "row; it carries no information")
    for col in numeric:  # cheap tests first: on millions of rows only a real candidate is sorted
        values = frame[col].to_numpy(dtype=np.float64)
        if len(values) >= MIN_ROWS_FOR_ID and not np.isnan(values).any() and \
                values.max() - values.min() + 1 == len(values) and np.all(np.mod(values, 1) == 0) \
                and len(np.unique(values)) == len(values):
            warnings.append(f"column {col!r} numbers the rows (consecutive unique integers); "
                            "if it is an id, declare it with --drop-columns")
    return warnings


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def categories(values: pd.Series) -> dict:
    seen = sorted({str(v) for v in values.dropna().unique()})
    out: dict = {"n_categories": len(seen), "categories": seen[:MAX_CATEGORIES_RECORDED]}
    if len(seen) > MAX_CATEGORIES_RECORDED:
        out["categories_truncated"] = True
    return out


def check_target(values: pd.Series, target: str, problem_type: str) -> None:
    """A target nothing can be learned from is an input error, named."""
    if problem_type == "regression":
        distinct = values.dropna().unique()
        if len(distinct) == 1:
            raise InputError(f"regression target {target!r} has the same value ({distinct[0]}) in every "
                             "usable row; R² is undefined and there is nothing to learn")


def label_rule(labels: list, declared: str | None, target: str) -> tuple[object, str | None]:
    """The positive class of a binary label and the rule that chose it (see the module doc)."""
    if len(labels) != 2:
        if declared:
            raise InputError(f"--positive-class {declared!r} applies to two-class labels; column "
                             f"{target!r} has {len(labels)} classes {labels[:10]}")
        return None, None
    if declared:
        match = [label for label in labels if str(label) == declared.strip()]
        if not match:
            raise InputError(f"--positive-class {declared!r} is not a label of column {target!r}; "
                             f"its labels are {labels}")
        return match[0], POSITIVE_RULE_DECLARED
    return labels[-1], POSITIVE_RULE_DEFAULT


def python_labels(values: pd.Series) -> list:
    """Sorted distinct labels as plain Python values (JSON-safe, as the model's classes_ order)."""
    return [v.item() if hasattr(v, "item") else v for v in sorted(values.dropna().unique().tolist())]


def infer_schema(raw: pd.DataFrame, *, target: str, problem_type: str, source: str,
                 drop: Sequence[str] = (), numeric: Sequence[str] = (),
                 categorical: Sequence[str] = (), recipes: Sequence[str] = (),
                 positive_class: str | None = None,
                 min_rows: int = 2) -> tuple[Cleaned, DatasetSchema]:
    """Cleaned rows and their schema from a raw frame (text cells, or numbers the reader parsed).

    Declared lists win; every other column's kind comes from its values (mostly numbers: numeric).
    A text column unique per row is dropped as an id, with the reason recorded.
    """
    columns = list(raw.columns)
    check_declared(columns, target, {"--drop-columns": list(drop), "--numeric-columns": list(numeric),
                                     "--categorical-columns": list(categorical)}, source)
    kept = [c for c in columns if c not in drop]
    undeclared = [c for c in kept if c not in numeric and c not in categorical]
    inferred = set(infer_categorical(raw, target, columns=undeclared))
    text = [c for c in kept if c != target and (c in categorical or (c in inferred and c not in numeric))]
    body = raw.drop(columns=list(drop)) if drop else raw
    cleaned = clean_frame(body, target=target, problem_type=problem_type, source=source,
                          categorical=text, min_rows=min_rows)
    dropped = [{"name": c, "reason": "declared in --drop-columns"} for c in drop]
    warnings = []
    for col in identifier_columns(cleaned.frame, [c for c in cleaned.categorical if c not in categorical]):
        dropped.append({"name": col, "reason": "identifier: a different text value on every row"})
        warnings.append(f"column {col!r} dropped: its text differs on every row, so it looks like an id "
                        "(declare it in --categorical-columns to keep it)")
        cleaned.categorical.remove(col)
        cleaned.frame = cleaned.frame.drop(columns=col)
    if not cleaned.features:
        raise InputError(f"{source}: no feature columns left besides the target {target!r} "
                         f"(dropped: {[d['name'] for d in dropped]})")
    check_target(cleaned.frame[target], target, problem_type)
    derived = recipe_features(list(recipes), cleaned.numeric)
    labels, positive, rule = None, None, None
    if problem_type == "classification":
        labels = python_labels(cleaned.frame[target])
        positive, rule = label_rule(labels, positive_class, target)
    elif positive_class:
        raise InputError("--positive-class is for classification labels; --problem-type is regression")
    order = [c for c in columns if c in cleaned.features]
    features = [{"name": c, "kind": "numeric"} if c in cleaned.numeric
                else {"name": c, "kind": "categorical", **categories(cleaned.frame[c])} for c in order]
    warnings += column_warnings(cleaned.frame, cleaned.numeric, cleaned.categorical)
    schema = DatasetSchema(target=target, problem_type=problem_type, features=features, dropped=dropped,
                           labels=labels, positive_class=positive, positive_class_rule=rule,
                           feature_recipes=list(recipes), derived_features=derived, warnings=warnings)
    cleaned.numeric = schema.numeric
    cleaned.categorical = schema.categorical
    return cleaned, schema


def write_schema(schema: DatasetSchema, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema.to_dict(), indent=2, allow_nan=False))


def read_schema_files(directory: str | Path) -> DatasetSchema | None:
    """The schema preprocess left in a split directory (``schema.json``, or one per host when the
    job had several); None when there is none. Shards must agree on everything but categories."""
    paths = sorted(Path(directory).glob("schema*.json"))
    if not paths:
        return None
    schemas = []
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from exc
        schemas.append(DatasetSchema.from_dict(data, str(path)))
    first = schemas[0]
    for other, path in zip(schemas[1:], paths[1:], strict=True):
        for key in ("target", "problem_type", "feature_recipes", "positive_class"):
            if getattr(other, key) != getattr(first, key):
                raise InputError(f"{path.name}: {key} {getattr(other, key)!r} differs from "
                                 f"{paths[0].name}'s {getattr(first, key)!r}")
        if [(f["name"], f["kind"]) for f in other.features] != \
                [(f["name"], f["kind"]) for f in first.features]:
            raise InputError(f"{path.name}: features differ from {paths[0].name}'s; the shards were "
                             "preprocessed with different columns or column kinds")
    if len(schemas) > 1:
        first.features = [_merged(fs) for fs in zip(*(s.features for s in schemas), strict=True)]
        if first.labels is not None:
            first.labels = sorted({label for s in schemas for label in s.labels or []})
    return first


def _merged(features: tuple[dict, ...]) -> dict:
    out = dict(features[0])
    if out["kind"] == "categorical":
        seen = sorted({c for f in features for c in f.get("categories", [])})
        out.update({"categories": seen[:MAX_CATEGORIES_RECORDED],
                    "n_categories": max(len(seen), max(f.get("n_categories", 0) for f in features))})
    return out
