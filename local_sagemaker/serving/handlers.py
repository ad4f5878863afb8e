"""The SageMaker scikit-learn serving contract, inside the model server process.

A user module may define ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn`` (or
``transform_fn``); whatever it lacks falls back to the container's defaults below.
Errors are classified so the client gets a status and a one-line message, never a traceback:
an exception carrying an HTTP ``status_code`` (the inference toolkit's error convention) gets
that status; unsupported content types -> 415; ValueError/TypeError/KeyError/IndexError raised
while decoding or predicting (bad payload, wrong columns) -> 400; anything else -> 500.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

JSON, CSV, NPY = "application/json", "text/csv", "application/x-npy"
UTF8_TYPES = (JSON, CSV)
BAD_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError)
MODEL_FILE_SUFFIXES = (".joblib", ".pkl", ".pickle")


class InferenceError(Exception):
    """A request the model could not serve: ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class UnsupportedFormatError(InferenceError):
    def __init__(self, content_type: str, what: str) -> None:
        super().__init__(
            415,
            f"{what} {content_type!r} is not supported by the default handlers "
            f"(supported: {JSON}, {CSV}, {NPY}); implement input_fn/output_fn in the entry point",
        )


def base_type(content_type: str | None) -> str:
    """``text/csv; charset=utf-8`` -> ``text/csv``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode(data: str | bytes, content_type: str) -> np.ndarray:
    """Request body -> array, as the container's default decoders do (CSV rows are 2-D)."""
    kind = base_type(content_type)
    if kind == CSV:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float32, ndmin=2)
    if kind == JSON:
        return np.array(json.loads(data), dtype=np.float32)
    if kind == NPY:
        return np.load(io.BytesIO(data), allow_pickle=False)
    raise UnsupportedFormatError(content_type, "Content type")


def encode(prediction: Any, accept: str) -> bytes:
    """Prediction -> response body for ``accept``."""
    kind = base_type(accept)
    array = np.asarray(prediction)
    if kind == JSON:
        return json.dumps(array.tolist()).encode()
    if kind == CSV:
        buf = io.StringIO()
        np.savetxt(buf, array if array.ndim else array.reshape(1), delimiter=",", fmt="%s")
        return buf.getvalue().encode()
    if kind == NPY:
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        return buf.getvalue()
    raise UnsupportedFormatError(accept, "Accept type")


def default_model_fn(model_dir: str) -> Any:
    """Load ``model.joblib`` (or the only .joblib/.pkl file) from the model directory."""
    import joblib

    root = Path(model_dir)
    preferred = root / "model.joblib"
    candidates = (
        [preferred]
        if preferred.is_file()
        else sorted(p for p in root.iterdir() if p.is_file() and p.suffix in MODEL_FILE_SUFFIXES)
    )
    if len(candidates) != 1:
        found = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        raise FileNotFoundError(
            f"default model_fn expects model.joblib (or exactly one .joblib/.pkl file) in the "
            f"model directory; found {found}. Define model_fn in the entry point to load others"
        )
    return joblib.load(candidates[0])


def default_input_fn(input_data: str | bytes, content_type: str) -> np.ndarray:
    return decode(input_data, content_type)


def default_predict_fn(data: Any, model: Any) -> Any:
    return model.predict(data)


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    return encode(prediction, accept), base_type(accept)


def _response(result: Any, accept: str) -> tuple[bytes, str]:
    """Normalise what output_fn/transform_fn returned into ``(body, content_type)``."""
    content_type = accept
    if isinstance(result, tuple) and len(result) == 2:
        result, content_type = result
    if isinstance(result, str):
        return result.encode("utf-8"), content_type
    if isinstance(result, bytes | bytearray):
        return bytes(result), content_type
    return encode(result, content_type), content_type


class Handlers:
    """The user module's handlers with the defaults filling the gaps."""

    def __init__(self, module: ModuleType | None = None) -> None:
        def pick(name: str, default: Callable | None) -> Callable | None:
            return getattr(module, name, default) if module is not None else default

        self.model_fn = pick("model_fn", default_model_fn)
        self.transform_fn = pick("transform_fn", None)
        self.input_fn = pick("input_fn", default_input_fn)
        self.predict_fn = pick("predict_fn", default_predict_fn)
        self.output_fn = pick("output_fn", default_output_fn)
        if (
            self.transform_fn is not None
            and module is not None
            and any(hasattr(module, n) for n in ("input_fn", "predict_fn", "output_fn"))
        ):
            raise ValueError(
                "Cannot use transform_fn together with input_fn, predict_fn and/or output_fn"
            )
        self.model: Any = None

    def load(self, model_dir: str) -> None:
        self.model = self.model_fn(model_dir)

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """Run one request through the handlers; raises InferenceError on a bad request."""
        data: str | bytes = body
        if base_type(content_type) in UTF8_TYPES:
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InferenceError(400, f"Request body is not valid UTF-8: {exc}") from exc
        if self.transform_fn is not None:
            result = _stage(
                "transform_fn", self.transform_fn, self.model, data, content_type, accept
            )
            return _response(result, accept)
        decoded = _stage("input_fn", self.input_fn, data, content_type)
        prediction = _stage("predict_fn", self.predict_fn, decoded, self.model)
        return _response(_stage("output_fn", self.output_fn, prediction, accept), accept)


def _stage(name: str, fn: Callable, *args: Any) -> Any:
    try:
        return fn(*args)
    except InferenceError:
        raise
    except Exception as exc:
        raise _classify(name, exc) from exc


def _classify(name: str, exc: Exception) -> InferenceError:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status < 600:
        # the inference toolkit's convention (BaseInferenceToolkitError): the error has a status
        message = getattr(exc, "message", None) or str(exc)
        return InferenceError(status, " ".join(str(message).split())[:1000])
    if isinstance(exc, BAD_INPUT_ERRORS):
        return InferenceError(500 if name == "output_fn" else 400, one_line(exc))
    return InferenceError(500, f"{name} failed: {one_line(exc)}")


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, for responses and FailureReasons."""
    text = " ".join(str(exc).split()) or repr(exc)
    return f"{type(exc).__name__}: {text}"[:1000]
