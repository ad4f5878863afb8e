"""The serving contract's default handlers and error classification, in process."""

from __future__ import annotations

import io
import json
import types

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from local_sagemaker.serving.handlers import (
    Handlers,
    InferenceError,
    UnsupportedFormatError,
    decode,
    default_model_fn,
    encode,
)


@pytest.mark.parametrize(
    ("body", "shape"),
    [("1,2,3", (1, 3)), ("1,2,3\n4,5,6\n", (2, 3)), ("1\n2\n", (2, 1)), ("7", (1, 1))],
)
def test_csv_rows_are_always_two_dimensional(body, shape):
    assert decode(body, "text/csv; charset=utf-8").shape == shape


def test_json_and_npy_decode():
    assert decode("[[1, 2], [3, 4]]", "application/json").tolist() == [[1, 2], [3, 4]]
    buf = io.BytesIO()
    np.save(buf, np.arange(3))
    assert decode(buf.getvalue(), "application/x-npy").tolist() == [0, 1, 2]


def test_encode_each_accept_type():
    assert encode(np.array([1.5, 2.0]), "application/json") == b"[1.5, 2.0]"
    assert encode(np.array([1.5, 2.0]), "text/csv") == b"1.5\n2.0\n"
    assert encode(np.float64(3.0), "text/csv") == b"3.0\n"
    assert np.load(io.BytesIO(encode([1, 2], "application/x-npy"))).tolist() == [1, 2]
    with pytest.raises(UnsupportedFormatError) as err:
        encode([1], "image/png")
    assert err.value.status == 415 and "'image/png'" in err.value.message


def test_default_model_fn_loads_model_joblib_or_the_only_pickle(tmp_path):
    import joblib

    joblib.dump(LinearRegression(), tmp_path / "estimator.pkl")
    assert isinstance(default_model_fn(str(tmp_path)), LinearRegression)
    joblib.dump(LinearRegression(), tmp_path / "other.joblib")
    with pytest.raises(FileNotFoundError, match=r"found \['estimator.pkl', 'other.joblib'\]"):
        default_model_fn(str(tmp_path))


def _handlers(**functions) -> Handlers:
    handlers = Handlers(types.SimpleNamespace(**functions))
    handlers.model = LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0])
    return handlers


def test_user_handlers_and_defaults_combine():
    handlers = _handlers(input_fn=lambda body, content_type: [[float(body)]])
    body, content_type = handlers.invoke(b"3", "text/plain", "application/json")
    assert content_type == "application/json"
    assert json.loads(body) == pytest.approx([6.0])


def test_output_fn_may_return_text_bytes_or_a_tuple():
    for output, expected in [
        ("6", (b"6", "text/csv")),
        (b"\x00", (b"\x00", "text/csv")),
        (("{}", "application/json"), (b"{}", "application/json")),
    ]:
        handlers = _handlers(output_fn=lambda prediction, accept, out=output: out)
        assert handlers.invoke(b"1", "text/csv", "text/csv") == expected


@pytest.mark.parametrize(
    ("functions", "status", "message"),
    [
        ({"input_fn": lambda b, c: {}["rooms"]}, 400, "KeyError: 'rooms'"),
        (
            {"predict_fn": lambda d, m: int("x")},
            400,
            "ValueError: invalid literal for int() with base 10: 'x'",
        ),
        (
            {"predict_fn": lambda d, m: 1 / 0},
            500,
            "predict_fn failed: ZeroDivisionError: division by zero",
        ),
        (
            {"output_fn": lambda p, a: int("x")},
            500,
            "ValueError: invalid literal for int() with base 10: 'x'",
        ),
    ],
)
def test_errors_are_classified_with_a_one_line_message(functions, status, message):
    with pytest.raises(InferenceError) as err:
        _handlers(**functions).invoke(b"1", "text/csv", "application/json")
    assert (err.value.status, err.value.message) == (status, message)


class PayloadError(Exception):
    """Like sagemaker_inference.errors.GenericInferenceToolkitError: carries its HTTP status."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code, self.message = status_code, message


def test_errors_carrying_a_status_code_keep_it():
    def reject(body, content_type):
        raise PayloadError("row 1 has 2 values,\n expected 9", 415)

    with pytest.raises(InferenceError) as err:
        _handlers(input_fn=reject).invoke(b"1", "text/csv", "application/json")
    assert (err.value.status, err.value.message) == (415, "row 1 has 2 values, expected 9")


def test_invalid_utf8_is_a_client_error():
    with pytest.raises(InferenceError) as err:
        _handlers().invoke(b"\xff\xfe", "text/csv", "application/json")
    assert err.value.status == 400 and "not valid UTF-8" in err.value.message


def test_transform_fn_replaces_the_other_handlers_and_cannot_be_mixed():
    handlers = _handlers(
        transform_fn=lambda model, body, content_type, accept: (body.upper(), "text/plain")
    )
    assert handlers.invoke(b"abc", "text/csv", "text/plain") == (b"ABC", "text/plain")
    with pytest.raises(ValueError, match="Cannot use transform_fn together with input_fn"):
        Handlers(types.SimpleNamespace(transform_fn=print, input_fn=print))
