"""Small S3 reads of the pipeline's JSON documents and artifacts, through the provider's S3Hook."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.common.compat.sdk import AirflowException
from botocore.exceptions import ClientError

from sagemaker_mlops.naming import split_s3_uri

MISSING_CODES = frozenset({"NoSuchKey", "404", "NoSuchBucket"})


def _body(s3: S3Hook, uri: str) -> Any:
    """The streaming body of an S3 object, naming ``uri`` when the object or its bucket is missing.

    Read through the hook's client: ``S3Hook.read_key`` goes through a boto3 resource, which
    builds a second client (and parses the S3 service model again) in every task that calls it.
    """
    bucket, key = split_s3_uri(uri)
    try:
        return s3.get_conn().get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in MISSING_CODES:
            raise AirflowException(f"{uri} does not exist") from exc
        raise


def read_json(s3: S3Hook, uri: str) -> Any:
    """A JSON document from S3, with the URI in the error when it is missing or invalid."""
    try:
        return json.loads(_body(s3, uri).read())
    except json.JSONDecodeError as exc:
        raise AirflowException(f"{uri} is not valid JSON: {exc}") from exc


def s3_sha256(s3: S3Hook, uri: str) -> str:
    """sha256 of an S3 object, read in 1 MiB chunks (a model artifact may be gigabytes)."""
    body = _body(s3, uri)
    digest = hashlib.sha256()
    for chunk in body.iter_chunks(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()
