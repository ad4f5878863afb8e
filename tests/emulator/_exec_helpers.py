"""Fixtures for the runner and serving tests: moto's own server for S3 and Logs, no emulator.

Import the fixtures into a test module with ``from tests.emulator._exec_helpers import *``.
"""

from __future__ import annotations

import io
import tarfile
import threading
import uuid
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from local_sagemaker import s3util
from local_sagemaker.runner import JobContext
from tests.emulator._core_helpers import script, tarball

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_url():
    """A real HTTP moto server on a free loopback port (S3 and CloudWatch Logs)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3(moto_url):
    return s3util.aws_client("s3", moto_url, REGION)


@pytest.fixture(scope="session")
def logs(moto_url):
    return s3util.aws_client("logs", moto_url, REGION)


@pytest.fixture
def bucket(s3):
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def job_context(moto_url, tmp_path):
    """A factory of JobContexts recording the secondary statuses they are given."""

    def make(**overrides) -> JobContext:
        statuses: list[tuple[str, str]] = []
        ctx = JobContext(
            endpoint_url=moto_url,
            region=REGION,
            work_dir=tmp_path / "jobs",
            stop_event=threading.Event(),
            on_secondary_status=lambda status, message: statuses.append((status, message)),
        )
        ctx.statuses = statuses  # type: ignore[attr-defined]
        for key, value in overrides.items():
            setattr(ctx, key, value)
        return ctx

    return make


def put_text(s3, bucket: str, key: str, text: str) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=text.encode())
    return f"s3://{bucket}/{key}"


def put_tarball(s3, bucket: str, key: str, files: dict[str, str | bytes]) -> str:
    """Upload a .tar.gz holding ``files`` (name -> content); returns its URI."""
    s3.put_object(Bucket=bucket, Key=key, Body=tarball(files))
    return f"s3://{bucket}/{key}"


def read_tarball(s3, uri: str) -> dict[str, bytes]:
    bucket, key = s3util.parse_s3_uri(uri)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def log_messages(logs, group: str, job_name: str) -> dict[str, list[str]]:
    """Every stream of a job in a log group -> its messages, read back with GetLogEvents."""
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job_name}/")
    out = {}
    for stream in streams["logStreams"]:
        events = logs.get_log_events(
            logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
        )["events"]
        out[stream["logStreamName"]] = [e["message"] for e in events]
    return out


def local_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script(text))
    return path
