"""Shared fixtures: the emulator as a real subprocess, and an Airflow connection pointing at it."""

from __future__ import annotations

import json
import uuid

import pytest

from local_sagemaker.launcher import REGION, EmulatorProcess


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> EmulatorProcess:
    """``python -m local_sagemaker serve`` on a free port: ``.url``, ``.data_dir``, ``.client()``."""
    running = EmulatorProcess(tmp_path_factory.mktemp("emulator"))
    yield running
    code = running.stop()
    assert code == 0, f"emulator exited with {code}:\n{running.log()}"


@pytest.fixture
def aws_conn_env(emulator, monkeypatch) -> str:
    """Point Airflow's aws_default connection (and the S3 client output_files_to_xcom builds
    without the connection's endpoint_url) at the emulator."""
    conn = {"conn_type": "aws", "login": "test", "password": "test",
            "extra": {"region_name": REGION, "endpoint_url": emulator.url}}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", emulator.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return "aws_default"


@pytest.fixture
def bucket(emulator) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    emulator.client("s3").create_bucket(Bucket=name)
    return name
