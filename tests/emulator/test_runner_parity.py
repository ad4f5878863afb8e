"""Parity with the real image: plain SageMaker scripts run as they would in the container.

A third-party-style script opens literal ``/opt/ml`` paths and reads no ``SM_*`` variable; it sees
the image's Python packages (scikit-learn 1.4.2, no matplotlib), never the emulator's; training
hyperparameters reach it through the real toolkit. The remap fallback still runs this project's
own scripts (which find /opt/ml through ``OPT_ML_DIR``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local_sagemaker import images, isolation
from local_sagemaker.runner import run_processing_job, run_training_job
from tests.emulator import _exec_helpers as helpers
from tests.emulator._core_helpers import SKLEARN_IMAGE
from tests.emulator._exec_helpers import put_tarball, put_text, read_tarball, script

pytestmark = pytest.mark.slow  # real processes against moto's server

moto_url, s3, logs, bucket, job_context = (
    helpers.moto_url,
    helpers.s3,
    helpers.logs,
    helpers.bucket,
    helpers.job_context,
)
SM_ENV = Path(__file__).resolve().parents[2] / "include" / "training" / "sm_env.py"

FACTS_PY = script(
    """
    import json, os, sys
    import numpy, pandas, sklearn

    def importable(name):
        try:
            __import__(name)
        except ImportError:
            return False
        return True

    rows = open("/opt/ml/processing/input/data/rows.csv").read().split()
    facts = {
        "python": sys.executable,
        "sklearn": sklearn.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "matplotlib": importable("matplotlib"),
        "airflow": importable("airflow"),
        "rows": rows,
        "sm_vars": sorted(k for k in os.environ if k.startswith("SM_") and k != "SM_INPUT"
                          and not k.endswith(("_FILE", "_DIR"))),
        "opt_ml": sorted(os.listdir("/opt/ml")),
    }
    os.makedirs("/opt/ml/processing/output", exist_ok=True)
    json.dump(facts, open("/opt/ml/processing/output/facts.json", "w"))
    """
)


def _processing(bucket: str, name: str, code_uri: str, data_uri: str, out_uri: str) -> dict:
    def s3_input(input_name: str, uri: str) -> dict:
        return {
            "InputName": input_name,
            "S3Input": {
                "S3Uri": uri,
                "LocalPath": f"/opt/ml/processing/input/{input_name}",
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
            },
        }

    return {
        "ProcessingJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
        "AppSpecification": {
            "ImageUri": SKLEARN_IMAGE,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/job.py"],
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
        },
        "ProcessingInputs": [s3_input("code", code_uri), s3_input("data", data_uri)],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": out_uri,
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    }


def _training(bucket: str, name: str, source: str, hyperparameters: dict[str, str]) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": SKLEARN_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": json.dumps(source),
            **hyperparameters,
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/data/train"}
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
    }


def _object(s3, uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_a_plain_processing_script_sees_the_image_and_a_literal_opt_ml(s3, bucket, job_context):
    code = put_text(s3, bucket, "code/job.py", FACTS_PY)
    put_text(s3, bucket, "raw/rows.csv", "1\n2\n")
    request = _processing(bucket, "parity-proc", code, f"s3://{bucket}/raw", f"s3://{bucket}/out")
    result = run_processing_job(request, job_context())
    assert result.status == "Completed", result.failure_reason
    facts = json.loads(_object(s3, f"s3://{bucket}/out/facts.json"))
    assert facts["python"] == str(images.resolve(SKLEARN_IMAGE).python)
    assert (facts["sklearn"], facts["numpy"], facts["pandas"]) == ("1.4.2", "2.1.0", "2.3.2")
    assert facts["matplotlib"] is False  # the image has none, and processing installs nothing
    assert facts["airflow"] is False  # nothing of the emulator's own environment leaks in
    assert facts["rows"] == ["1", "2"]
    assert facts["sm_vars"] == []  # processing jobs get no toolkit variables
    assert facts["opt_ml"] == ["config", "output", "processing"]


def test_hyperparameters_reach_the_script_through_the_toolkit(s3, bucket, job_context):
    put_text(s3, bucket, "data/train/a.csv", "1\n")
    train_py = script(
        """
        import argparse, json, os, sys
        parser = argparse.ArgumentParser()
        parser.add_argument("-C", type=float)
        parser.add_argument("--max_iter", type=int)
        parser.add_argument("--penalty")
        args, _ = parser.parse_known_args()
        with open("/opt/ml/model/seen.json", "w") as fh:
            json.dump({"argv": sys.argv[1:], "C": args.C, "max_iter": args.max_iter,
                       "penalty": args.penalty, "hps": json.loads(os.environ["SM_HPS"])}, fh)
        """
    )
    source = put_tarball(s3, bucket, "code/sourcedir.tar.gz", {"train.py": train_py})
    hyperparameters = {  # JSON-encoded as the SageMaker SDK sends them, and one plain string
        "C": "0.5",
        "max_iter": "100",
        "penalty": '"l2"',
        "fit_intercept": "true",
        "class_weight": "null",
        "label": "not json",
    }
    result = run_training_job(_training(bucket, "parity-hps", source, hyperparameters), job_context())
    assert result.status == "Completed", result.failure_reason
    seen = json.loads(read_tarball(s3, result.model_artifact)["seen.json"])
    assert (seen["C"], seen["max_iter"], seen["penalty"]) == (0.5, 100, "l2")
    assert seen["argv"] == [  # sagemaker-training's mapping.to_cmd_args: sorted, -C for one letter
        "-C", "0.5", "--class_weight", "", "--fit_intercept", "True", "--label", "not json",
        "--max_iter", "100", "--penalty", "l2",
    ]  # fmt: skip
    assert seen["hps"] == {  # JSON decoding keeps the types
        "C": 0.5, "max_iter": 100, "penalty": "l2", "fit_intercept": True, "class_weight": None,
        "label": "not json",
    }  # fmt: skip


@pytest.fixture
def remap_mode(monkeypatch):
    """The isolation's fallback (no mount namespace), as an unprivileged container would have."""
    monkeypatch.setenv(isolation.MODE_VARIABLE, "remap")
    isolation.mode.cache_clear()
    yield
    monkeypatch.delenv(isolation.MODE_VARIABLE)
    isolation.mode.cache_clear()


def test_remap_mode_still_runs_the_projects_scripts(s3, bucket, job_context, remap_mode):
    job_py = script(
        """
        import json, sys
        sys.path.insert(0, "/opt/ml/processing/input/code")
        from sm_env import opt_ml_dir, resource_config
        host, hosts = resource_config()
        rows = (opt_ml_dir() / "processing" / "input" / "data" / "rows.csv").read_text().split()
        out = opt_ml_dir() / "processing" / "output" / "facts.json"
        out.write_text(json.dumps({"host": host, "rows": rows, "opt_ml": str(opt_ml_dir()),
                                   "argv": sys.argv[1:]}))
        """
    )
    put_text(s3, bucket, "code/job.py", job_py)
    put_text(s3, bucket, "code/sm_env.py", SM_ENV.read_text())
    put_text(s3, bucket, "raw/rows.csv", "3\n")
    request = _processing(
        bucket, "parity-remap", f"s3://{bucket}/code", f"s3://{bucket}/raw", f"s3://{bucket}/out"
    )
    request["AppSpecification"]["ContainerArguments"] = ["--out=/opt/ml/processing/output"]
    ctx = job_context()
    result = run_processing_job(request, ctx)
    assert result.status == "Completed", result.failure_reason
    facts = json.loads(_object(s3, f"s3://{bucket}/out/facts.json"))
    sandbox = str(Path(ctx.work_dir) / "parity-remap" / "instance-1" / "opt" / "ml")
    assert facts == {"host": "algo-1", "rows": ["3"], "opt_ml": sandbox,
                     "argv": [f"--out={sandbox}/processing/output"]}  # fmt: skip

    # training through the toolkit: SAGEMAKER_BASE_DIR points it at the sandbox
    put_text(s3, bucket, "data/train/a.csv", "1\n")
    train_py = "import os\nopen(os.environ['SM_MODEL_DIR'] + '/where.txt', 'w').write(os.environ['SM_MODEL_DIR'])\n"
    source = put_tarball(s3, bucket, "code/sourcedir.tar.gz", {"train.py": train_py})
    result = run_training_job(_training(bucket, "parity-remap-train", source, {}), job_context())
    assert result.status == "Completed", result.failure_reason
    where = read_tarball(s3, result.model_artifact)["where.txt"].decode()
    assert where.endswith("/parity-remap-train/instance-1/opt/ml/model")


def _index_serves(package: str, tmp_path: Path) -> bool:
    """Whether this machine's package index (pip's own configuration) can provide ``package``."""
    import subprocess

    python = str(images.resolve(SKLEARN_IMAGE).python)
    done = subprocess.run(
        [python, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(tmp_path), package],
        capture_output=True, timeout=120,
    )
    return done.returncode == 0


def test_requirements_are_installed_by_the_toolkit_into_the_container_only(
    s3, bucket, job_context, tmp_path
):
    if not _index_serves("appdirs==1.4.4", tmp_path):
        pytest.skip("no package index reachable: the toolkit's requirements.txt install needs one")
    put_text(s3, bucket, "data/train/a.csv", "1\n")
    train_py = "import appdirs\nopen('/opt/ml/model/v.txt', 'w').write(appdirs.__version__)\n"
    source = put_tarball(
        s3, bucket, "code/sourcedir.tar.gz",
        {"train.py": train_py, "requirements.txt": "appdirs==1.4.4\n"},
    )
    result = run_training_job(_training(bucket, "parity-reqs", source, {}), job_context())
    assert result.status == "Completed", result.failure_reason
    assert read_tarball(s3, result.model_artifact)["v.txt"] == b"1.4.4"

    # the next container starts from the image again: the install did not leak into it
    code = put_text(s3, bucket, "code/job.py", FACTS_PY.replace('"airflow"', '"appdirs"'))
    put_text(s3, bucket, "raw/rows.csv", "1\n")
    request = _processing(bucket, "parity-after", code, f"s3://{bucket}/raw", f"s3://{bucket}/out2")
    assert run_processing_job(request, job_context()).status == "Completed"
    assert json.loads(_object(s3, f"s3://{bucket}/out2/facts.json"))["appdirs"] is False
