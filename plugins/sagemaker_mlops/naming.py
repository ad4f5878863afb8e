"""Where one run keeps its objects in S3, and what its SageMaker resources are called.

The S3 layout of one run is
``s3://<bucket>/<prefix>/runs/<run key>/{code,data/{train,validation,test,profile},model,evaluation}/``
where the run key is the Airflow run id with characters other than ``[A-Za-z0-9._-]`` replaced.
Names are deterministic per run, so a retried or cleared task finds what an earlier try made.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

MAX_NAME_LENGTH = 63


def run_key(run_id: str) -> str:
    """The run id as an S3-key-safe path segment (keeps it readable)."""
    key = re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-.")
    if not key:
        raise ValueError(f"run id {run_id!r} has no usable characters")
    return key


def resource_name(*parts: str, unique: str) -> str:
    """A SageMaker name (<= 63 chars of [a-zA-Z0-9-]) from readable parts plus a short hash.

    The hash of ``unique`` (e.g. the run id) keeps names unique when the readable part is cut.
    """
    digest = hashlib.sha256(unique.encode()).hexdigest()[:8]
    readable = "-".join(re.sub(r"[^A-Za-z0-9]+", "-", p).strip("-") for p in parts if p)
    readable = re.sub(r"-+", "-", readable).strip("-")
    room = MAX_NAME_LENGTH - len(digest) - 1
    readable = readable[:room].rstrip("-")
    return f"{readable}-{digest}" if readable else digest


def job_name(kind: str, run_id: str, base: str = "mlops") -> str:
    """Name of a job of this run, e.g. ``mlops-train-20261123T170000-1a2b3c4d``."""
    stamp = re.search(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):?(\d{2}):?(\d{2})", run_id)
    when = "".join(stamp.groups()[:3]) + "T" + "".join(stamp.groups()[3:]) if stamp else ""
    return resource_name(base, kind, when, unique=f"{kind}:{run_id}")


@dataclass(frozen=True)
class RunLayout:
    """Where one run keeps its code, data, model and evaluation in S3."""

    bucket: str
    prefix: str
    run_id: str

    def _uri(self, *parts: str) -> str:
        path = "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))
        return f"s3://{self.bucket}/{path}/"

    @property
    def run_uri(self) -> str:
        return self._uri("runs", run_key(self.run_id))

    @property
    def default_raw_uri(self) -> str:
        return self._uri("raw")

    @property
    def code_uri(self) -> str:
        return self.run_uri + "code/"

    @property
    def scripts_uri(self) -> str:
        """Plain scripts, mounted into Processing jobs."""
        return self.code_uri + "scripts/"

    @property
    def sourcedir_uri(self) -> str:
        """The tarball for script-mode training and inference."""
        return self.code_uri + "sourcedir.tar.gz"

    def data_uri(self, split: str) -> str:
        return f"{self.run_uri}data/{split}/"

    @property
    def profile_json_uri(self) -> str:
        """preprocess.py's data profile (one host: ``profile.json``)."""
        return self.data_uri("profile") + "profile.json"

    @property
    def data_checks_json_uri(self) -> str:
        """preprocess.py's data checks against the champion's profile (``data_checks.json``)."""
        return self.data_uri("profile") + "data_checks.json"

    @property
    def model_uri(self) -> str:
        return self.run_uri + "model/"

    @property
    def evaluation_uri(self) -> str:
        return self.run_uri + "evaluation/"

    @property
    def evaluation_json_uri(self) -> str:
        return self.evaluation_uri + "evaluation.json"

    @property
    def verdict_json_uri(self) -> str:
        return self.evaluation_uri + "verdict.json"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://`` URI; anything else is refused with the URI named."""
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", uri)
    if not match:
        raise ValueError(f"not an S3 URI: {uri!r} (expected s3://bucket/key)")
    return match.group(1), match.group(2)
