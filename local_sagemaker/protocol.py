"""AWS wire protocol pieces: JSON 1.1 bodies, botocore-model validation and AWS error shapes.

Validation uses botocore's own service model so the emulator rejects exactly what the real
service rejects at the edge: types and required members (botocore's ParamValidator) plus the
``min``/``max``/``pattern`` constraints that ParamValidator leaves to the server.
"""

from __future__ import annotations

import functools
import json
import math
from datetime import datetime
from typing import Any

import botocore.session
import regex as _re  # the model's patterns are Java's (\p{L}, ...); Python's re cannot read them
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

ACCOUNT_ID = "123456789012"


class AwsError(Exception):
    """An error answered to the client in AWS's shape (code + message + HTTP status)."""

    def __init__(self, code: str, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message, **self.extra}


def validation_error(message: str) -> AwsError:
    return AwsError("ValidationException", message)


@functools.cache
def service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


# Java spells the supplementary planes as a UTF-16 surrogate-pair range (e.g. in free-text shapes)
_JAVA_SUPPLEMENTARY = (r"\uD800\uDC00-\uDBFF\uDFFF", r"\U00010000-\U0010FFFF")


@functools.cache
def _compiled(pattern: str) -> Any:
    """The compiled pattern; None only for a pattern that is not a regular expression at all."""
    try:
        return _re.compile(pattern.replace(*_JAVA_SUPPLEMENTARY))
    except _re.error:
        return None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _describe(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 256 else text[:253] + "..."


def _length_errors(meta: dict[str, Any], value: str | list[Any] | dict[str, Any],
                   path: str) -> list[str]:
    """Violations of a string's length or a list's or map's entry count, worded as AWS words them."""
    errors: list[str] = []
    if "min" in meta and len(value) < meta["min"]:
        errors.append(f"Value '{_describe(value)}' at '{path}' failed to satisfy constraint: "
                      f"Member must have length greater than or equal to {meta['min']}")
    if "max" in meta and len(value) > meta["max"]:
        errors.append(f"Value '{_describe(value)}' at '{path}' failed to satisfy constraint: "
                      f"Member must have length less than or equal to {meta['max']}")
    return errors


def _constraint_errors(shape: Shape, value: Any, path: str) -> list[str]:
    """Collect violations of the shape's min/max/pattern/enum constraints, worded as AWS words them."""
    errors: list[str] = []
    meta = shape.metadata
    kind = shape.type_name
    if kind == "string" and isinstance(value, str):
        errors += _length_errors(meta, value, path)
        if shape.enum and value not in shape.enum:
            errors.append(f"Value '{_describe(value)}' at '{path}' failed to satisfy constraint: "
                          f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = meta.get("pattern")
        compiled = _compiled(pattern) if pattern else None
        if compiled is not None and compiled.fullmatch(value) is None:
            errors.append(f"Value '{_describe(value)}' at '{path}' failed to satisfy constraint: "
                          f"Member must satisfy regular expression pattern: {pattern}")
    elif kind in ("integer", "long", "float", "double") and isinstance(value, int | float):
        if "min" in meta and value < meta["min"]:
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: "
                          f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: "
                          f"Member must have value less than or equal to {meta['max']}")
    elif kind == "structure" and isinstance(value, dict):
        for key, member in shape.members.items():
            if key in value and value[key] is not None:
                errors += _constraint_errors(member, value[key], f"{path}.{_camel(key)}" if path else _camel(key))
    elif kind == "list" and isinstance(value, list):
        errors += _length_errors(meta, value, path)
        for i, item in enumerate(value):
            errors += _constraint_errors(shape.member, item, f"{path}.{i + 1}.member")
    elif kind == "map" and isinstance(value, dict):
        errors += _length_errors(meta, value, path)  # e.g. CustomerMetadataProperties: 1-50 entries
        for key, item in value.items():
            errors += _constraint_errors(shape.key, key, f"{path}.{key}.key")
            errors += _constraint_errors(shape.value, item, f"{path}.{key}.value")
    return errors


def validate(operation: OperationModel, params: dict[str, Any]) -> None:
    """Raise ValidationException for a request botocore's model (or its constraints) rejects."""
    shape = operation.input_shape
    if shape is None:
        return
    errors = _constraint_errors(shape, params, "")  # type-guarded, so safe before type checks
    if errors:
        noun = "error" if len(errors) == 1 else "errors"
        raise validation_error(f"{len(errors)} validation {noun} detected: " + "; ".join(errors))
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise validation_error(report.generate_report())


def parse_json_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise AwsError("SerializationException", f"Request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise AwsError("SerializationException", "Request body must be a JSON object")
    return body


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dump_json(data: Any) -> bytes:
    return json.dumps(data, default=_json_default, allow_nan=False).encode()


def public_view(record: Any) -> Any:
    """The record as the API shows it: keys starting with "_" are emulator-internal."""
    if isinstance(record, dict):
        return {k: public_view(v) for k, v in record.items() if not k.startswith("_")}
    if isinstance(record, list):
        return [public_view(v) for v in record]
    if isinstance(record, float) and not math.isfinite(record):
        return None
    return record
