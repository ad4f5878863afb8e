"""ModelServer end to end: real serving processes loading real sklearn models from moto's S3."""

from __future__ import annotations

import importlib
import io
import json
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from local_sagemaker.serving import ModelError, ModelLoadError, ModelServer, ThrottlingError
from tests.emulator import _exec_helpers as helpers
from tests.emulator._exec_helpers import REGION, put_tarball, script

moto_url, s3, bucket = helpers.moto_url, helpers.s3, helpers.bucket
pytestmark = pytest.mark.slow  # real serving processes: ~2 s each to import sklearn

COLUMNS = ["rooms", "households", "income"]

# A transformer in a module beside the entry point: the pickle refers to it by module name.
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

ROWS = np.array([[5.0, 2.0, 3.0], [6.0, 3.0, 4.5], [8.0, 2.0, 1.0], [4.0, 1.0, 7.0]])


@pytest.fixture(scope="module")
def features_module(tmp_path_factory):
    code_dir = tmp_path_factory.mktemp("code")
    (code_dir / "features.py").write_text(FEATURES_PY)
    sys.path.insert(0, str(code_dir))
    # include/training/features.py (on pytest's pythonpath) may already be imported under the
    # same name: set it aside so this test's own features module is the one pickled.
    previous = sys.modules.pop("features", None)
    try:
        yield importlib.import_module("features")
    finally:
        sys.path.remove(str(code_dir))
        sys.modules.pop("features", None)
        if previous is not None:
            sys.modules["features"] = previous


@pytest.fixture(scope="module")
def pipeline(features_module):
    frame = pd.DataFrame(ROWS, columns=COLUMNS)
    target = frame["rooms"] / frame["households"] * 2 + frame["income"]
    return Pipeline(
        [("features", features_module.RoomsPerHousehold()), ("model", LinearRegression())]
    ).fit(frame, target)


def _joblib_bytes(model) -> bytes:
    buf = io.BytesIO()
    joblib.dump(model, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def custom_model(s3, pipeline):
    """Containers for the Pipeline served by inference.py (+ features.py) from a sourcedir."""
    bucket = f"serving-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    model_uri = put_tarball(
        s3, bucket, "model/model.tar.gz", {"model.joblib": _joblib_bytes(pipeline)}
    )
    code_uri = put_tarball(
        s3,
        bucket,
        "code/sourcedir.tar.gz",
        {"inference.py": INFERENCE_PY, "features.py": FEATURES_PY},
    )
    return [
        {
            "Image": "sklearn:1.4-2",
            "ModelDataUrl": model_uri,
            "Environment": {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": code_uri,
            },
        }
    ]


@pytest.fixture(scope="module")
def custom_server(custom_model, moto_url, tmp_path_factory):
    """One server for the tests that only invoke it."""
    server = ModelServer(custom_model, moto_url, REGION, tmp_path_factory.mktemp("custom"))
    server.start()
    try:
        server.wait_ready(timeout=60)
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
        server.wait_ready(timeout=60)
        return server

    yield start
    for server in servers:
        server.stop()


def _csv(rows) -> bytes:
    return "\n".join(",".join(str(v) for v in row) for row in rows).encode()


def test_custom_entry_point_serves_csv_and_json(custom_server, pipeline):
    server = custom_server
    expected = pipeline.predict(pd.DataFrame(ROWS, columns=COLUMNS))

    body, content_type = server.invoke(_csv(ROWS[:1]), "text/csv", "application/json")
    assert content_type == "application/json"
    assert json.loads(body)["predictions"] == pytest.approx(expected[:1].tolist())

    body, content_type = server.invoke(
        json.dumps({"instances": ROWS.tolist()}).encode(), "application/json", "text/csv"
    )
    assert content_type == "text/csv"
    assert [float(v) for v in body.decode().split()] == pytest.approx(expected.tolist())
    assert server.url.startswith("http://127.0.0.1:")


def test_bad_payload_is_a_4xx_model_error_with_the_message(custom_server):
    server = custom_server
    with pytest.raises(ModelError) as err:
        server.invoke(b"1,2\n", "text/csv", "application/json")
    assert err.value.status == 400
    assert (
        err.value.message
        == "ValueError: expected 3 columns ['rooms', 'households', 'income'], got 2"
    )
    assert str(err.value).startswith("Received client error (400) from primary with message")


def test_model_crash_is_a_5xx_model_error_without_traceback(custom_server):
    server = custom_server
    with pytest.raises(ModelError) as err:
        server.invoke(b"1,2,-1\n", "text/csv", None)
    assert err.value.status == 500
    assert err.value.message == "predict_fn failed: RuntimeError: negative income crashed the model"
    # logged, not returned: the server's output is collected by a reader thread, so allow it time
    deadline = time.monotonic() + 10
    while not any("Traceback" in line for line in server.output_tail):
        assert time.monotonic() < deadline, f"no traceback logged; output: {server.output_tail}"
        time.sleep(0.05)


def test_concurrent_invocations_are_answered_correctly(custom_server, pipeline):
    server = custom_server
    rows = [[float(i + 2), 2.0, float(i)] for i in range(40)]
    expected = pipeline.predict(pd.DataFrame(rows, columns=COLUMNS))
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda r: server.invoke(_csv([r]), "text/csv", "text/csv")[0], rows)
        )
    assert [float(a) for a in answers] == pytest.approx(expected.tolist())


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


def test_default_handlers_load_model_joblib(s3, bucket, serve):
    model = LinearRegression().fit(ROWS, ROWS @ np.array([1.0, 2.0, 3.0]))
    uri = put_tarball(s3, bucket, "plain/model.tar.gz", {"model.joblib": _joblib_bytes(model)})
    server = serve([{"Image": "sklearn", "ModelDataUrl": uri, "Environment": {}}])

    body, content_type = server.invoke(b"1,1,1\n2,0,1", "text/csv", None)
    assert content_type == "application/json"  # the container's default accept
    assert json.loads(body) == pytest.approx([6.0, 5.0])

    body, content_type = server.invoke(b"[[1, 1, 1]]", "application/json", "text/csv")
    assert (content_type, float(body)) == ("text/csv", pytest.approx(6.0))

    npy = io.BytesIO()
    np.save(npy, np.array([[0.0, 0.0, 1.0]]))
    body, _ = server.invoke(npy.getvalue(), "application/x-npy", "application/x-npy")
    assert np.load(io.BytesIO(body)) == pytest.approx([3.0])

    with pytest.raises(ModelError) as err:
        server.invoke(b"1,1\n", "text/csv", None)
    assert err.value.status == 400 and "expecting 3 features" in err.value.message

    with pytest.raises(ModelError) as err:
        server.invoke(b"<rows/>", "application/xml", None)
    assert err.value.status == 415 and "'application/xml' is not supported" in err.value.message

    with pytest.raises(ModelError) as err:
        server.invoke(b"1,x,1\n", "text/csv", None)
    assert (
        err.value.message
        == "ValueError: could not convert string 'x' to float32 at row 0, column 2."
    )


def test_inference_pipeline_chains_containers(s3, bucket, serve):
    doubler = script(
        """
        def model_fn(model_dir):
            return None

        def input_fn(body, content_type):
            return [[float(v) * 2 for v in line.split(",")] for line in body.splitlines()]

        def predict_fn(rows, model):
            return rows

        def output_fn(rows, accept):
            return "\\n".join(",".join(str(v) for v in row) for row in rows), "text/csv"
        """
    )
    code = put_tarball(s3, bucket, "pre/sourcedir.tar.gz", {"pre.py": doubler})
    model = LinearRegression().fit(ROWS, ROWS @ np.array([1.0, 2.0, 3.0]))
    uri = put_tarball(s3, bucket, "chain/model.tar.gz", {"model.joblib": _joblib_bytes(model)})
    server = serve(
        [
            {
                "Image": "pre",
                "Environment": {"SAGEMAKER_PROGRAM": "pre.py", "SAGEMAKER_SUBMIT_DIRECTORY": code},
            },
            {"Image": "sklearn", "ModelDataUrl": uri},
        ]
    )
    body, _ = server.invoke(b"1,1,1", "text/csv", "application/json")
    assert json.loads(body) == pytest.approx([12.0])


def _load_error(moto_url, tmp_path, containers) -> str:
    server = ModelServer(containers, moto_url, REGION, tmp_path / "failing")
    server.start()
    try:
        with pytest.raises(ModelLoadError) as err:
            server.wait_ready(timeout=60)
    finally:
        server.stop()
    return str(err.value)


def test_model_fn_failure_is_a_model_load_error(s3, bucket, moto_url, tmp_path):
    code = put_tarball(
        s3,
        bucket,
        "bad/sourcedir.tar.gz",
        {
            "inference.py": "def model_fn(model_dir):\n    raise RuntimeError('model.joblib was trained with sklearn 0.1')\n"
        },
    )
    reason = _load_error(
        moto_url,
        tmp_path,
        [
            {
                "Environment": {
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": code,
                }
            }
        ],
    )
    assert reason == "model_fn failed: RuntimeError: model.joblib was trained with sklearn 0.1"


def test_missing_model_data_is_a_model_load_error(bucket, moto_url, tmp_path):
    uri = f"s3://{bucket}/nowhere/model.tar.gz"
    reason = _load_error(moto_url, tmp_path, [{"ModelDataUrl": uri}])
    assert reason.startswith(f"Failed to download model data from {uri}: ")


def test_default_model_fn_without_a_model_file(s3, bucket, moto_url, tmp_path):
    uri = put_tarball(s3, bucket, "empty/model.tar.gz", {"readme.txt": "no model here"})
    reason = _load_error(moto_url, tmp_path, [{"ModelDataUrl": uri}])
    assert reason.startswith(
        "model_fn failed: FileNotFoundError: default model_fn expects model.joblib"
    )
    assert "['readme.txt']" in reason


def test_unimportable_entry_point_is_a_model_load_error(s3, bucket, moto_url, tmp_path):
    code = put_tarball(
        s3, bucket, "imp/sourcedir.tar.gz", {"inference.py": "import not_installed_pkg\n"}
    )
    reason = _load_error(
        moto_url,
        tmp_path,
        [
            {
                "Environment": {
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": code,
                }
            }
        ],
    )
    assert reason == (
        "Failed to import SAGEMAKER_PROGRAM inference.py: ModuleNotFoundError: No module named 'not_installed_pkg'"
    )


def test_the_emulator_project_is_not_on_the_model_path(s3, bucket, moto_url, tmp_path):
    code = put_tarball(
        s3,
        bucket,
        "iso/sourcedir.tar.gz",
        {"inference.py": "import tests.emulator._exec_helpers\n"},
    )
    reason = _load_error(
        moto_url,
        tmp_path,
        [
            {
                "Environment": {
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": code,
                }
            }
        ],
    )
    assert reason.endswith("ModuleNotFoundError: No module named 'tests'")


def test_stop_ends_the_process_and_is_idempotent(custom_model, moto_url, tmp_path):
    server = ModelServer(custom_model, moto_url, REGION, tmp_path / "stop")
    server.start()
    server.wait_ready(timeout=60)
    process = server._containers[0].processes[0].popen
    server.stop()
    server.stop()
    assert process.poll() is not None


def test_code_packed_in_the_model_tarball_as_the_sdk_repacks_it(s3, bucket, serve, pipeline):
    uri = put_tarball(
        s3,
        bucket,
        "repacked/model.tar.gz",
        {
            "model.joblib": _joblib_bytes(pipeline),
            "code/inference.py": INFERENCE_PY,
            "code/features.py": FEATURES_PY,
        },
    )
    env = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
    server = serve([{"ModelDataUrl": uri, "Environment": env}])
    body, _ = server.invoke(_csv(ROWS[:2]), "text/csv", "application/json")
    expected = pipeline.predict(pd.DataFrame(ROWS[:2], columns=COLUMNS))
    assert json.loads(body)["predictions"] == pytest.approx(expected.tolist())
