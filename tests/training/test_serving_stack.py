"""inference.py inside the scikit-learn image's own serving stack: refusals are 4xx answers.

The stack (sagemaker_sklearn_container.serving:main, the WSGI app gunicorn serves) answers 500 to
anything a handler raises, so a bad request must come back as the response ``output_fn`` returns.
Runs in the image environment (``./dev install`` builds it), with a model trained there too.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from training_support import TRAINING, Container, birds

pytestmark = pytest.mark.slow

CLIENT_PY = textwrap.dedent(
    """
    import json, os, sys
    base, code, cases = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    os.environ.update(SAGEMAKER_BASE_DIR=base, SAGEMAKER_PROGRAM="inference.py")
    sys.path.insert(0, code)
    from werkzeug.test import Client
    from werkzeug.wrappers import Response
    from sagemaker_sklearn_container import serving
    client = Client(serving.main, Response)
    answers = []
    for content_type, accept, body in cases:
        r = client.post("/invocations", data=body,
                        headers={"Content-Type": content_type, "Accept": accept})
        answers.append([r.status_code, r.get_data(as_text=True)])
    print(json.dumps(answers))
    """
)


def _image_python() -> Path:
    from local_sagemaker import images

    python = images.environments_root() / "sklearn-1.4-2" / "bin" / "python"
    if not python.is_file():
        pytest.skip(f"image environment not built ({python}); ./dev install builds it")
    return python


def test_bad_requests_are_4xx_answers_naming_the_column(tmp_path: Path) -> None:
    python = _image_python()
    c = Container(tmp_path)
    birds().to_csv(c.path("processing", "input", "raw") / "birds.csv", index=False)
    env = c.env()
    splits = c.opt_ml / "processing" / "output"
    for argv in (["preprocess.py", "--target", "status", "--problem-type", "classification"],
                 ["train.py", "--train", str(splits / "train"), "--model-dir", str(c.opt_ml / "model")]):
        done = subprocess.run([str(python), str(TRAINING / argv[0]), *argv[1:]], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    features = ["wingspan_cm", "habitat", "mass_g", "clutch"]
    cases = [
        ("text/csv", "application/json", "120.5,coast,,3\n"),
        ("text/csv", "application/json", "wingspan_cm,habitat,mass_g,clutch,ring_code\n1,coast,2,3,R\n"),
        ("application/json", "application/json", json.dumps({"wingspan_cm": "wide", "habitat": "coast",
                                                             "mass_g": 1, "clutch": 2})),
        ("application/x-parquet", "application/json", "x"),
        ("text/csv", "application/xml", "120.5,coast,,3\n"),
    ]
    done = subprocess.run([str(python), "-c", CLIENT_PY, str(c.opt_ml), str(TRAINING), json.dumps(cases)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    status, body = answers[0]
    assert status == 200 and json.loads(body)["predictions"][0] in ("migrant", "resident")
    expected = [
        (400, f"unexpected column(s) ['ring_code']; the model takes exactly {features}"),
        (400, "row 1 column 'wingspan_cm': expected a number, got 'wide'"),
        (415, "unsupported content type 'application/x-parquet'; send text/csv or application/json"),
        (406, "unsupported accept type 'application/xml'; ask for application/json or text/csv"),
    ]
    for (status, body), (want_status, want_message) in zip(answers[1:], expected, strict=True):
        assert (status, json.loads(body)) == (want_status, {"error": "PayloadError",
                                                            "message": want_message})
