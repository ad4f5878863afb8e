"""ModelServer end to end: the image's serving stack in its environment, models from moto's S3."""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from local_sagemaker import images
from local_sagemaker.serving import ModelError, ModelLoadError, ModelServer, ThrottlingError
from local_sagemaker.serving.container import failure_reason
from tests.emulator import _exec_helpers as helpers
from tests.emulator._core_helpers import MODEL_FN_ENTRY_POINT, SKLEARN_IMAGE
from tests.emulator._exec_helpers import REGION, put_tarball, script

moto_url, s3, bucket = helpers.moto_url, helpers.s3, helpers.bucket
pytestmark = pytest.mark.slow  # real gunicorn servers: ~3 s each to install the code and boot

COLUMNS = ["rooms", "households", "income"]

FEATURES_PY = script(
    """
    from sklearn.base import BaseEstimator, TransformerMixin

    class RoomsPerHousehold(BaseEstimator, TransformerMixin):
        def fit(self, X, y=None):
            return self

        def transform(self, X):
            X = X.copy()
            X["rooms_per_household"] = X["rooms"] / X["households"]
            return X[["rooms_per_household", "income"]]
    """
)

INFERENCE_PY = script(
    """
    import io, json, os, time
    import joblib
    import pandas as pd

    COLUMNS = ["rooms", "households", "income"]

    def model_fn(model_dir):
        assert model_dir == os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml") + "/model", model_dir
        return joblib.load(os.path.join(model_dir, "model.joblib"))

    def input_fn(body, content_type):
        if content_type == "text/csv":
            frame = pd.read_csv(io.StringIO(body), header=None)
        elif content_type == "application/json":
            frame = pd.DataFrame(json.loads(body)["instances"])
        else:
            raise ValueError(f"unsupported content type {content_type}")
        if frame.shape[1] != len(COLUMNS):
            raise ValueError(f"expected {len(COLUMNS)} columns {COLUMNS}, got {frame.shape[1]}")
        frame.columns = COLUMNS
        return frame

    def predict_fn(frame, model):
        if (frame["income"] < 0).any():
            raise RuntimeError("negative income crashed the model")
        if (frame["income"] == 999).any():
            time.sleep(1.5)
        return model.predict(frame)

    def output_fn(prediction, accept):
        if accept == "text/csv":
            return "\\n".join(str(v) for v in prediction), "text/csv"
        return json.dumps({"predictions": prediction.tolist()}), "application/json"
    """
)

MODEL_FN_ONLY_PY = MODEL_FN_ENTRY_POINT

ROWS = np.array([[5.0, 2.0, 3.0], [6.0, 3.0, 4.5], [8.0, 2.0, 1.0], [4.0, 1.0, 7.0]])


def image_joblib(tmp: Path, body: str, code: dict[str, str] | None = None) -> bytes:
    """``model`` as built by ``body``, pickled by the image's own scikit-learn (what training does)."""
    for name, text in (code or {}).items():
        (tmp / name).write_text(text)
    program = f"import sys, joblib\nsys.path.insert(0, {str(tmp)!r})\n{body}\n"
    program += f"joblib.dump(model, {str(tmp / 'model.joblib')!r})\n"
    python = images.resolve(SKLEARN_IMAGE).python
    subprocess.run([str(python), "-c", program], check=True, capture_output=True)
    return (tmp / "model.joblib").read_bytes()


PIPELINE_PY = f"""
import numpy as np, pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from features import RoomsPerHousehold
rows = np.array({ROWS.tolist()})
frame = pd.DataFrame(rows, columns={COLUMNS})
target = frame["rooms"] / frame["households"] * 2 + frame["income"]
model = Pipeline([("features", RoomsPerHousehold()), ("model", LinearRegression())]).fit(frame, target)
"""
LINEAR_PY = f"""
import numpy as np
from sklearn.linear_model import LinearRegression
rows = np.array({ROWS.tolist()})
model = LinearRegression().fit(rows, rows @ np.array([1.0, 2.0, 3.0]))
"""


def expected_pipeline(rows) -> list[float]:
    rows = np.asarray(rows, dtype=float)
    return (rows[:, 0] / rows[:, 1] * 2 + rows[:, 2]).tolist()


@pytest.fixture(scope="module")
def custom_model(s3, tmp_path_factory):
    """The Pipeline (with features.py beside the entry point) served by inference.py."""
    bucket = "serving-custom"
    s3.create_bucket(Bucket=bucket)
    model = image_joblib(tmp_path_factory.mktemp("pipeline"), PIPELINE_PY, {"features.py": FEATURES_PY})
    model_uri = put_tarball(s3, bucket, "model/model.tar.gz", {"model.joblib": model})
    code_uri = put_tarball(
        s3, bucket, "code/sourcedir.tar.gz", {"inference.py": INFERENCE_PY, "features.py": FEATURES_PY}
    )
    environment = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": code_uri}
    return [{"Image": SKLEARN_IMAGE, "ModelDataUrl": model_uri, "Environment": environment}]


@pytest.fixture(scope="module")
def linear_model(s3, tmp_path_factory):
    """model.tar.gz with a plain LinearRegression (y = x1 + 2 x2 + 3 x3) and a code tarball."""
    bucket = "serving-linear"
    s3.create_bucket(Bucket=bucket)
    model = image_joblib(tmp_path_factory.mktemp("linear"), LINEAR_PY)
    return {
        "model": put_tarball(s3, bucket, "model.tar.gz", {"model.joblib": model}),
        "code": put_tarball(s3, bucket, "code.tar.gz", {"inference.py": MODEL_FN_ONLY_PY}),
        "bucket": bucket,
    }


@pytest.fixture(scope="module")
def custom_server(custom_model, moto_url, tmp_path_factory):
    server = ModelServer(custom_model, moto_url, REGION, tmp_path_factory.mktemp("custom"))
    server.start()
    try:
        server.wait_ready(timeout=120)
        yield server
    finally:
        server.stop()


@pytest.fixture
def serve(moto_url, tmp_path):
    """Start ModelServers and make sure every one is stopped at the end."""
    servers = []

    def start(containers, **kwargs) -> ModelServer:
        server = ModelServer(
            containers, moto_url, REGION, tmp_path / f"endpoint-{len(servers)}", **kwargs
        )
        servers.append(server)
        server.start()
        server.wait_ready(timeout=120)
        return server

    yield start
    for server in servers:
        server.stop()


def _csv(rows) -> bytes:
    return "\n".join(",".join(str(v) for v in row) for row in rows).encode()


def _code_container(model_uri: str, code_uri: str, program: str = "inference.py") -> dict:
    environment = {"SAGEMAKER_PROGRAM": program, "SAGEMAKER_SUBMIT_DIRECTORY": code_uri}
    return {"Image": SKLEARN_IMAGE, "ModelDataUrl": model_uri, "Environment": environment}


def test_custom_entry_point_serves_csv_and_json(custom_server):
    server = custom_server
    body, content_type = server.invoke(_csv(ROWS[:1]), "text/csv", "application/json")
    assert content_type == "application/json"
    assert json.loads(body)["predictions"] == pytest.approx(expected_pipeline(ROWS[:1]))

    body, content_type = server.invoke(
        json.dumps({"instances": ROWS.tolist()}).encode(), "application/json", "text/csv"
    )
    assert content_type == "text/csv; charset=utf-8"  # Flask adds the charset to text types
    assert [float(v) for v in body.decode().split()] == pytest.approx(expected_pipeline(ROWS))
    assert server.url.startswith("http://127.0.0.1:")


def test_a_handler_error_is_http_500_as_the_image_answers_it(custom_server):
    """The image's Transformer wraps whatever a handler raises; Flask answers 500."""
    for payload in (b"1,2\n", b"1,2,-1\n"):  # a ValueError in input_fn, a RuntimeError in predict_fn
        with pytest.raises(ModelError) as err:
            custom_server.invoke(payload, "text/csv", "application/json")
        assert err.value.status == 500
        assert "<title>500 Internal Server Error</title>" in err.value.message
        assert str(err.value).startswith("Received server error (500) from primary with message")
    deadline = time.monotonic() + 10  # the traceback is in the server's log, not in the answer
    while not any("negative income crashed the model" in line for line in custom_server.output_tail):
        assert time.monotonic() < deadline, custom_server.output_tail
        time.sleep(0.05)


def test_concurrent_invocations_are_answered_correctly(custom_server):
    rows = [[float(i + 2), 2.0, float(i)] for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda r: custom_server.invoke(_csv([r]), "text/csv", "text/csv")[0], rows)
        )
    assert [float(a) for a in answers] == pytest.approx(expected_pipeline(rows))


def test_max_concurrency_throttles_excess_requests(custom_model, serve):
    server = serve(custom_model, max_concurrency=1)
    slow = threading.Thread(target=server.invoke, args=(b"1,1,999\n", "text/csv", None))
    slow.start()
    throttled = []
    while slow.is_alive() and not throttled:
        try:
            server.invoke(b"1,1,1\n", "text/csv", None)
        except ThrottlingError as exc:
            throttled.append(exc)
    slow.join()
    assert throttled and throttled[0].status == 429
    server.invoke(b"1,1,1\n", "text/csv", None)  # the slot is free again


def test_the_image_defaults_decode_csv_json_and_npy(linear_model, serve):
    server = serve([_code_container(linear_model["model"], linear_model["code"])])
    body, content_type = server.invoke(b"1,1,1\n2,0,1", "text/csv", None)
    assert content_type == "application/json"  # SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT's default
    assert json.loads(body) == pytest.approx([6.0, 5.0])

    body, content_type = server.invoke(b"[[1, 1, 1]]", "application/json", "text/csv")
    assert (content_type, float(body)) == ("text/csv; charset=utf-8", pytest.approx(6.0))

    npy = io.BytesIO()
    np.save(npy, np.array([[0.0, 0.0, 1.0]]))
    body, _ = server.invoke(npy.getvalue(), "application/x-npy", "application/x-npy")
    assert np.load(io.BytesIO(body)) == pytest.approx([3.0])

    # the image's quirks: one CSV row decodes to a 1-D array, and nothing but 500 for bad input
    for payload, content_type in ((b"1,1,1", "text/csv"), (b"<rows/>", "application/xml"),
                                  (b"1,1,1\n1,1,1", "text/csv; charset=utf-8")):  # fmt: skip
        with pytest.raises(ModelError) as err:
            server.invoke(payload, content_type, None)
        assert err.value.status == 500


def test_inference_pipeline_chains_containers(s3, linear_model, serve):
    doubler = script(
        """
        import flask

        def model_fn(model_dir):
            return None

        def input_fn(body, content_type):
            return [[float(v) * 2 for v in line.split(",")] for line in body.splitlines()]

        def predict_fn(rows, model):
            return rows

        def output_fn(rows, accept):
            text = "\\n".join(",".join(str(v) for v in row) for row in rows)
            return flask.Response(text, content_type="text/csv")
        """
    )
    code = put_tarball(s3, linear_model["bucket"], "pre/sourcedir.tar.gz", {"pre.py": doubler})
    server = serve(
        [
            {"Image": SKLEARN_IMAGE, "Environment": {"SAGEMAKER_PROGRAM": "pre.py",
                                                     "SAGEMAKER_SUBMIT_DIRECTORY": code}},
            _code_container(linear_model["model"], linear_model["code"]),
        ]
    )  # fmt: skip
    body, _ = server.invoke(b"1,1,1\n0,0,1", "text/csv", "application/json")
    assert json.loads(body) == pytest.approx([12.0, 6.0])


def _load_error(moto_url, tmp_path, containers) -> str:
    server = ModelServer(containers, moto_url, REGION, tmp_path / "failing")
    try:
        server.start()
        with pytest.raises(ModelLoadError) as err:
            server.wait_ready(timeout=120)
    except ModelLoadError as exc:  # failed before the container started (image, model data)
        return str(exc)
    finally:
        server.stop()
    return str(err.value)


def test_model_fn_failure_fails_the_ping_health_check(s3, bucket, moto_url, tmp_path):
    code = put_tarball(s3, bucket, "bad/sourcedir.tar.gz", {"inference.py": script(
        """
        def model_fn(model_dir):
            raise RuntimeError("model.joblib was trained with sklearn 0.1")
        """)})  # fmt: skip
    reason = _load_error(moto_url, tmp_path, [_code_container("", code) | {"ModelDataUrl": None}])
    assert reason == (
        "The primary container for production variant AllTraffic did not pass the ping health "
        "check: /ping answered HTTP 500 (RuntimeError: model.joblib was trained with sklearn 0.1). "
        "Please check CloudWatch logs for this endpoint."
    )


def test_missing_model_data_is_a_model_load_error(bucket, moto_url, tmp_path):
    uri = f"s3://{bucket}/nowhere/model.tar.gz"
    reason = _load_error(moto_url, tmp_path, [{"Image": SKLEARN_IMAGE, "ModelDataUrl": uri}])
    assert reason.startswith(f'Failed to download model data for container "container_1" from URL: "{uri}".')


def test_an_image_without_an_environment_cannot_start(moto_url, tmp_path):
    reason = _load_error(moto_url, tmp_path, [{"Image": "my/own-image:1"}])
    assert reason.startswith("Image my/own-image:1 is not supported by the local emulator.")


def test_without_model_fn_the_image_cannot_load_a_model(linear_model, s3, moto_url, tmp_path):
    code = put_tarball(s3, linear_model["bucket"], "nofn/code.tar.gz", {"inference.py": "X = 1\n"})
    reason = _load_error(moto_url, tmp_path, [_code_container(linear_model["model"], code)])
    assert "(NotImplementedError: Please provide a model_fn implementation.)" in reason


def test_unimportable_entry_point_stops_the_container(s3, bucket, moto_url, tmp_path):
    code = put_tarball(s3, bucket, "imp/sourcedir.tar.gz", {"inference.py": "import not_installed_pkg\n"})
    reason = _load_error(moto_url, tmp_path, [_code_container("", code) | {"ModelDataUrl": None}])
    assert "exited with code 1 (ModuleNotFoundError: No module named 'not_installed_pkg')" in reason


def test_the_emulator_project_is_not_on_the_model_path(s3, bucket, moto_url, tmp_path):
    code = put_tarball(
        s3, bucket, "iso/sourcedir.tar.gz", {"inference.py": "import tests.emulator._exec_helpers\n"}
    )
    reason = _load_error(moto_url, tmp_path, [_code_container("", code) | {"ModelDataUrl": None}])
    assert "(ModuleNotFoundError: No module named 'tests')" in reason


def test_code_packed_in_the_model_tarball_as_the_sdk_repacks_it(s3, bucket, serve, tmp_path):
    model = image_joblib(tmp_path, PIPELINE_PY, {"features.py": FEATURES_PY})
    uri = put_tarball(s3, bucket, "repacked/model.tar.gz", {
        "model.joblib": model, "code/inference.py": INFERENCE_PY, "code/features.py": FEATURES_PY})  # fmt: skip
    env = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
    server = serve([{"Image": SKLEARN_IMAGE, "ModelDataUrl": uri, "Environment": env}])
    body, _ = server.invoke(_csv(ROWS[:2]), "text/csv", "application/json")
    assert json.loads(body)["predictions"] == pytest.approx(expected_pipeline(ROWS[:2]))


def test_stop_ends_every_process_and_is_idempotent(linear_model, moto_url, tmp_path):
    server = ModelServer(
        [_code_container(linear_model["model"], linear_model["code"])], moto_url, REGION, tmp_path
    )
    server.start()
    server.wait_ready(timeout=120)
    process = server._containers[0].popen
    server.stop()
    server.stop()
    assert process.poll() is not None
    leftovers = subprocess.run(["pgrep", "-af", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout == ""


def test_failure_reason_is_the_root_cause_of_the_last_traceback():
    log = [
        "[INFO] Booting worker",
        "Traceback (most recent call last):",
        '  File "a.py", line 1, in <module>',
        "KeyError: 'old'",
        "[ERROR] Error handling request /ping",
        "Traceback (most recent call last):",
        '  File "serving.py", line 9, in model_fn',
        "FileNotFoundError: [Errno 2] No such file: '/opt/ml/model/model.joblib'",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "_functions.py", line 3, in wrapper',
        "sagemaker_containers._errors.ClientError: [Errno 2] No such file",
    ]
    assert failure_reason(log) == (
        "FileNotFoundError: [Errno 2] No such file: '/opt/ml/model/model.joblib'"
    )
    assert failure_reason(["InstallModuleError:", 'Command "pip install ."']) is None
    assert failure_reason(["Traceback (most recent call last):", "  x", "InstallModuleError:",
                           'Command "pip install ."']) == 'InstallModuleError: Command "pip install ."'  # fmt: skip
