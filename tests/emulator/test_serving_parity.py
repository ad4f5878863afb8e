"""Parity: what InvokeEndpoint answers equals what the image's serving stack answers in-process.

The reference is computed in the image environment itself: Flask's test client against
``sagemaker_sklearn_container.serving:main`` (the WSGI app gunicorn serves), with the same model
and entry point, no emulator involved. The endpoint is the emulator's, over HTTP with boto3: a
200 must match status, content type and body; a failure must be SageMaker's ``ModelError`` whose
``OriginalStatusCode`` / ``OriginalMessage`` are the stack's status and body.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
from botocore.exceptions import ClientError

from local_sagemaker import images
from tests.emulator._core_helpers import ROLE_ARN, SKLEARN_IMAGE, script, tarball, unique, wait_for

pytestmark = pytest.mark.slow

# Content types select a behaviour; real payloads go through the image's own default_input_fn.
ENTRY_POINT_PY = script(
    """
    import os
    import joblib
    from sagemaker_inference.errors import GenericInferenceToolkitError
    from sagemaker_containers.beta.framework import worker
    from sagemaker_sklearn_container.serving import default_input_fn, default_output_fn
    from werkzeug.exceptions import BadRequest

    def model_fn(model_dir):
        return joblib.load(os.path.join(model_dir, "model.joblib"))

    def input_fn(body, content_type):
        if content_type == "application/x-raise-value-error":
            raise ValueError("could not read the rows")
        if content_type == "application/x-raise-status-400":
            raise GenericInferenceToolkitError(400, "missing column(s) ['income']")
        if content_type == "application/x-raise-http-400":
            raise BadRequest("missing column(s) ['income']")
        if content_type == "application/x-return-400":
            return {"status": 400}
        return default_input_fn(body, content_type)

    def predict_fn(data, model):
        return data if isinstance(data, dict) else model.predict(data)

    def output_fn(prediction, accept):
        if isinstance(prediction, dict):
            return worker.Response("missing column(s) ['income']", status=prediction["status"],
                                   mimetype="text/plain")
        return default_output_fn(prediction, accept)
    """
)

CASES = {  # name: (content type, body)
    "good CSV": ("text/csv", "1,0,0\n0,1,0"),
    "good JSON": ("application/json", "[[1, 0, 0], [0, 0, 1]]"),
    "one CSV row": ("text/csv", "1,0,0"),
    "unsupported content type": ("application/xml", "<rows/>"),
    "handler raises ValueError": ("application/x-raise-value-error", "x"),
    "handler raises a 4xx-status error": ("application/x-raise-status-400", "x"),
    "handler raises werkzeug BadRequest": ("application/x-raise-http-400", "x"),
    "handler returns a 400 response": ("application/x-return-400", "x"),
}

REFERENCE_PY = script(
    """
    import json, os, sys
    base, code, cases = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    os.environ.update(SAGEMAKER_BASE_DIR=base, SAGEMAKER_PROGRAM="inference.py")
    sys.path.insert(0, code)
    from werkzeug.test import Client
    from werkzeug.wrappers import Response
    from sagemaker_sklearn_container import serving
    client = Client(serving.main, Response)
    answers = {}
    for name, (content_type, body) in cases.items():
        r = client.post("/invocations", data=body, headers={"Content-Type": content_type,
                                                            "Accept": "application/json"})
        answers[name] = [r.status_code, r.headers.get("Content-Type"), r.get_data(as_text=True)]
    print(json.dumps(answers))
    """
)

MISSING_MODEL_PY = script(
    """
    import os, sys
    os.environ.update(SAGEMAKER_BASE_DIR=sys.argv[1], SAGEMAKER_PROGRAM="inference.py")
    sys.path.insert(0, sys.argv[2])
    from werkzeug.test import Client
    from werkzeug.wrappers import Response
    from sagemaker_sklearn_container import serving
    try:  # the model loads on the first request: a failure escapes the WSGI app (gunicorn: 500)
        print(Client(serving.main, Response).get("/ping").status_code)
    except Exception as exc:
        print(f"{type(exc).__name__} caused by {type(exc.__context__).__name__}")
    """
)

TRAIN_PY = script(
    """
    import sys, joblib, numpy as np
    from sklearn.linear_model import LinearRegression
    x = np.eye(3)
    joblib.dump(LinearRegression().fit(x, x @ np.array([1.0, 2.0, 3.0])), sys.argv[1])
    """
)


def _image_python(*args: str) -> str:
    python = images.resolve(SKLEARN_IMAGE).python
    done = subprocess.run([str(python), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The model (trained by the image's scikit-learn), the entry point, the in-process answers."""
    root = tmp_path_factory.mktemp("parity")
    (root / "opt_ml" / "model").mkdir(parents=True)
    (root / "empty" / "model").mkdir(parents=True)
    (root / "code").mkdir()
    (root / "code" / "inference.py").write_text(ENTRY_POINT_PY)
    model = root / "opt_ml" / "model" / "model.joblib"
    _image_python("-c", TRAIN_PY, str(model))
    reference = json.loads(
        _image_python("-c", REFERENCE_PY, str(root / "opt_ml"), str(root / "code"), json.dumps(CASES))
    )
    missing_ping = _image_python("-c", MISSING_MODEL_PY, str(root / "empty"), str(root / "code"))
    return {"model": model.read_bytes(), "reference": reference, "missing_ping": missing_ping}


@pytest.fixture(scope="module")
def deployed(emulator, stack):
    """An endpoint serving the same model and entry point, and one whose model is missing."""
    sm, s3 = emulator.client("sagemaker"), emulator.client("s3")
    bucket = f"parity-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="model.tar.gz", Body=tarball({"model.joblib": stack["model"]}))
    s3.put_object(Bucket=bucket, Key="empty.tar.gz", Body=tarball({"README": "no model here"}))
    s3.put_object(Bucket=bucket, Key="code.tar.gz", Body=tarball({"inference.py": ENTRY_POINT_PY}))
    names = {}
    for label, key in (("served", "model.tar.gz"), ("missing", "empty.tar.gz")):
        model = unique(label)
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE_ARN, PrimaryContainer={
            "Image": SKLEARN_IMAGE, "ModelDataUrl": f"s3://{bucket}/{key}",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                            "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{bucket}/code.tar.gz"}})  # fmt: skip
        sm.create_endpoint_config(EndpointConfigName=model, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": model,
            "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 5}}])  # fmt: skip
        names[label] = unique(label)
        sm.create_endpoint(EndpointName=names[label], EndpointConfigName=model)
    for name in names.values():
        wait_for(lambda name=name: sm.describe_endpoint(EndpointName=name), "EndpointStatus",
                 ("Creating",))  # fmt: skip
    yield names
    for name in names.values():
        sm.delete_endpoint(EndpointName=name)


@pytest.mark.parametrize("case", list(CASES))
def test_invoke_endpoint_answers_what_the_image_answers(emulator, stack, deployed, case):
    content_type, body = CASES[case]
    status, expected_type, expected_body = stack["reference"][case]
    runtime = emulator.client("sagemaker-runtime")
    try:
        response = runtime.invoke_endpoint(EndpointName=deployed["served"], ContentType=content_type,
                                           Accept="application/json", Body=body)  # fmt: skip
    except ClientError as exc:
        error = exc.response
        assert error["Error"]["Code"] == "ModelError"
        assert (error["OriginalStatusCode"], error["OriginalMessage"]) == (status, expected_body)
        kind = "client" if status < 500 else "server"
        assert error["Error"]["Message"].startswith(
            f'Received {kind} error ({status}) from primary with message "{expected_body}". See '
        )
        return
    assert status == 200, f"the image answers {status}, the endpoint 200"
    assert (response["ContentType"], response["Body"].read().decode()) == (expected_type, expected_body)


def test_the_stacks_status_codes(stack):
    """The facts the README states: only a returned response can be a 4xx."""
    statuses = {case: answer[0] for case, answer in stack["reference"].items()}
    assert statuses == {
        "good CSV": 200,
        "good JSON": 200,
        "one CSV row": 500,
        "unsupported content type": 500,
        "handler raises ValueError": 500,
        "handler raises a 4xx-status error": 500,
        "handler raises werkzeug BadRequest": 500,
        "handler returns a 400 response": 400,
    }


def test_a_missing_model_fails_the_ping_health_check(emulator, stack, deployed):
    # in-process, the error escapes the app; gunicorn answers such a request with HTTP 500
    assert stack["missing_ping"].strip() == "ClientError caused by FileNotFoundError"
    described = emulator.client("sagemaker").describe_endpoint(EndpointName=deployed["missing"])
    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"].startswith(
        "The primary container for production variant AllTraffic did not pass the ping health "
        "check: /ping answered HTTP 500 (FileNotFoundError: "
    )
    assert described["FailureReason"].endswith("Please check CloudWatch logs for this endpoint.")
