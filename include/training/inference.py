"""SageMaker scikit-learn serving handlers: ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``.

The endpoint takes raw feature rows (the training CSV's columns minus the target) as ``text/csv``
(with or without a header line) or ``application/json`` and answers ``application/json``
(``{"predictions": [...]}``, plus ``probabilities`` and ``classes`` for classifiers) or ``text/csv``
(one prediction per line). Requests are checked against the schema the model was trained on
(``model_metadata.json``): every feature column present, no other column, numbers where the column
is numeric; the message names the column and what was expected.

A bad payload is a :class:`PayloadError`: a ``ValueError`` (and sagemaker-containers'
``ClientError`` where that is importable) with the ``status_code`` it deserves (400, 406 or 415)
and one line to show instead of a stack trace. The image's serving stack answers 500 to anything a
handler raises and only sends a 4xx that ``output_fn`` *returns*, so the handlers carry a refusal
to ``output_fn`` as a :class:`Refusal`, which answers it as the stack's ``Response`` with the
status and message; where that stack is absent (tests, the command line) ``output_fn`` raises it.

Run directly to try a payload against a model directory:
``python inference.py --model-dir DIR --content-type text/csv < rows.csv``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from features import model_frame
from model_io import LoadedModel, load_model_dir
from schema import is_missing

try:  # the serving stack of SageMaker's scikit-learn image; its light, dependency-free module
    from sagemaker_containers._errors import ClientError as _ClientError
except ImportError:  # outside the image (tests, local runs)
    _ClientError = None

CSV, JSON = "text/csv", "application/json"
MAX_ERRORS_SHOWN = 3
_BASES: tuple[type[Exception], ...] = (ValueError,) + ((_ClientError,) if _ClientError else ())


class PayloadError(*_BASES):  # type: ignore[misc]
    """A request the model cannot answer; ``status_code`` says which 4xx it deserves."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message

    def __str__(self) -> str:
        return self.message


def _media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class RawPayload:
    """Decoded request text; parsed in ``predict_fn`` where the model's column list is known."""

    text: str
    kind: str


@dataclass(frozen=True)
class Refusal:
    """A request refused before prediction, passed on so that ``output_fn`` answers it."""

    error: PayloadError


def _refuse(error: PayloadError) -> object:
    """The image stack's response with the error's status and a one-line JSON body; raised where
    that stack is absent."""
    try:
        from sagemaker_containers.beta.framework import worker
    except Exception:  # noqa: BLE001 - absent, or unusable outside the image (collections.Mapping)
        raise error from None
    body = json.dumps({"error": type(error).__name__, "message": error.message})
    return worker.Response(response=body, status=error.status_code, mimetype=JSON)


def model_fn(model_dir: str) -> LoadedModel:
    return load_model_dir(Path(model_dir))


def _frame_from_rows(rows: list[list], columns: list[str] | None, features: list[str]) -> pd.DataFrame:
    if not rows:
        raise PayloadError("payload has no rows")
    if columns is None:
        bad = [i + 1 for i, r in enumerate(rows) if len(r) != len(features)]
        if bad:
            raise PayloadError(f"row {bad[0]} has {len(rows[bad[0] - 1])} values, expected {len(features)} "
                               f"({', '.join(features)})")
        return pd.DataFrame(rows, columns=features)
    _check_columns(columns, features, "column")
    bad = [i + 1 for i, r in enumerate(rows) if len(r) != len(columns)]
    if bad:
        raise PayloadError(f"row {bad[0]} has {len(rows[bad[0] - 1])} values, header has {len(columns)}")
    return pd.DataFrame(rows, columns=columns)[features]


def _check_columns(columns: list[str], features: list[str], word: str) -> None:
    """Exactly the model's feature columns: a missing one cannot be imputed safely on purpose, an
    unexpected one (a typo, the target, an id) would otherwise be silently ignored."""
    missing = [c for c in features if c not in columns]
    if missing:
        raise PayloadError(f"missing {word}(s) {missing}; the model takes exactly {features}")
    unknown = [c for c in columns if c not in features]
    if unknown:
        raise PayloadError(f"unexpected {word}(s) {unknown}; the model takes exactly {features}")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise PayloadError(f"{word}(s) {repeated} given more than once")


def _parse_csv(text: str, features: list[str]) -> pd.DataFrame:
    rows = [r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r)]
    if not rows:
        raise PayloadError("empty CSV payload")
    first = [c.strip() for c in rows[0]]
    has_header = bool(set(first) & set(features))
    return _frame_from_rows(rows[1:] if has_header else rows, first if has_header else None, features)


def _parse_json(text: str, features: list[str]) -> pd.DataFrame:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PayloadError(f"invalid JSON payload ({exc})") from None
    if isinstance(data, dict) and "instances" in data:
        data = data["instances"]
    elif isinstance(data, dict) and "columns" in data and "data" in data:
        return _frame_from_rows(data["data"], list(data["columns"]), features)
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise PayloadError('JSON payload must be a row object, a list of rows, or {"instances": [...]}')
    if all(isinstance(r, dict) for r in data):
        for i, r in enumerate(data):
            try:
                _check_columns(list(r), features, "field")
            except PayloadError as exc:
                raise PayloadError(f"row {i + 1}: {exc}") from None
        return pd.DataFrame([[r.get(c) for c in features] for r in data], columns=features)
    if all(isinstance(r, list) for r in data):
        return _frame_from_rows(data, None, features)
    if all(not isinstance(r, dict | list) for r in data):
        return _frame_from_rows([data], None, features)  # one flat row
    raise PayloadError("JSON rows must all be objects or all be arrays")


def _shown(value: object) -> str:
    """A cell as the caller wrote it (numpy scalars as plain Python values)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _check_types(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> None:
    """Numeric fields must be numbers or empty, categorical ones text, numbers or empty (missing
    values are imputed by the model); nested JSON values are wrong everywhere."""
    errors = []
    for col in numeric:
        values = frame[col]
        nested = values.map(lambda v: isinstance(v, dict | list | bool | np.bool_)).to_numpy(dtype=bool)
        blank = is_missing(values.where(~nested, "x"))
        parsed = pd.to_numeric(values.where(~blank & ~nested), errors="coerce")
        bad = (parsed.isna() & ~blank).to_numpy(dtype=bool) | nested
        for row in np.flatnonzero(bad)[:MAX_ERRORS_SHOWN]:
            errors.append(f"row {row + 1} column {col!r}: expected a number, got {_shown(values.iloc[row])}")
        if (np.isinf(parsed.fillna(0).to_numpy(dtype=np.float64))).any():
            errors.append(f"column {col!r}: expected a finite number, got an infinite value")
    for col in categorical:
        nested = frame[col].map(lambda v: isinstance(v, dict | list)).to_numpy(dtype=bool)
        for row in np.flatnonzero(nested)[:MAX_ERRORS_SHOWN]:
            errors.append(f"row {row + 1} column {col!r}: expected a category (text), "
                          f"got {_shown(frame[col].iloc[row])}")
    if errors:
        raise PayloadError("; ".join(errors[:MAX_ERRORS_SHOWN]))


def input_fn(request_body: str | bytes, request_content_type: str) -> RawPayload | Refusal:
    """Check the content type and decode the body; rows are parsed against the model in predict_fn."""
    try:
        return _decode(request_body, request_content_type)
    except PayloadError as exc:
        return Refusal(exc)


def _decode(request_body: str | bytes, request_content_type: str) -> RawPayload:
    kind = _media_type(request_content_type)
    if kind not in (CSV, JSON):
        raise PayloadError(f"unsupported content type {request_content_type!r}; send {CSV} or {JSON}", 415)
    if isinstance(request_body, bytes | bytearray):
        try:
            request_body = request_body.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError("payload is not UTF-8 text") from None
    if not request_body or not request_body.strip():
        raise PayloadError("empty request body")
    return RawPayload(request_body, kind)


def parse_payload(text: str, kind: str, model: LoadedModel) -> pd.DataFrame:
    features = model.features
    frame = _parse_csv(text, features) if kind == CSV else _parse_json(text, features)
    _check_types(frame, model.metadata["numeric_columns"], model.metadata["categorical_columns"])
    return frame


def predict_fn(input_data: RawPayload | Refusal | pd.DataFrame, model: LoadedModel) -> dict | Refusal:
    """Predictions for a payload (or an already-built frame of the raw feature columns)."""
    if isinstance(input_data, Refusal):
        return input_data
    if isinstance(input_data, RawPayload):
        try:
            frame = parse_payload(input_data.text, input_data.kind, model)
        except PayloadError as exc:
            return Refusal(exc)
    else:
        frame = input_data
    meta = model.metadata
    X = model_frame(frame, meta["numeric_columns"], meta["categorical_columns"])
    if meta["problem_type"] == "regression":
        return {"predictions": [float(v) for v in model.pipeline.predict(X)]}
    proba = model.pipeline.predict_proba(X)
    classes = list(meta["classes"])
    return {"predictions": [classes[i] for i in proba.argmax(axis=1)],
            "probabilities": [[float(p) for p in row] for row in proba], "classes": classes}


def output_fn(prediction: dict | Refusal, accept: str | None) -> tuple[str, str] | object:
    """The answer as (body, content type), or a refusal as the serving stack's 4xx response."""
    if isinstance(prediction, Refusal):
        return _refuse(prediction.error)
    kind = _media_type(accept)
    if kind in ("", "*/*", JSON):
        return json.dumps(prediction), JSON
    if kind == CSV:
        return "".join(f"{p}\n" for p in prediction["predictions"]), CSV
    return _refuse(PayloadError(f"unsupported accept type {accept!r}; ask for {JSON} or {CSV}", 406))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, help="extracted model artifact directory")
    parser.add_argument("--content-type", default=CSV)
    parser.add_argument("--accept", default=JSON)
    args = parser.parse_args(argv)
    model = model_fn(args.model_dir)
    try:
        body, content_type = output_fn(predict_fn(input_fn(sys.stdin.read(), args.content_type), model),
                                       args.accept)
    except PayloadError as exc:
        print(f"{exc.status_code}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(body if body.endswith("\n") else body + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
