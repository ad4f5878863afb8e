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


def _raise_if_missing(uri: str, exc: ClientError) -> None:
    """Name ``uri`` when S3 answered that the object (or its bucket) is not there."""
    if exc.response.get("Error", {}).get("Code") in MISSING_CODES:
        raise AirflowException(f"{uri} does not exist") from exc


def read_json(s3: S3Hook, uri: str) -> Any:
    """A JSON document from S3, with the URI in the error when it is missing or invalid.

    Read through the hook's client: ``S3Hook.read_key`` goes through a boto3 resource, which
    builds a second client (and parses the S3 service model again) in every task that calls it.
    """
    bucket, key = split_s3_uri(uri)
    try:
        return json.loads(s3.get_conn().get_object(Bucket=bucket, Key=key)["Body"].read())
    except json.JSONDecodeError as exc:
        raise AirflowException(f"{uri} is not valid JSON: {exc}") from exc
    except ClientError as exc:
        _raise_if_missing(uri, exc)
        raise


def s3_sha256(s3: S3Hook, uri: str) -> str:
    """sha256 of an S3 object, read in 1 MiB chunks (a model artifact may be gigabytes)."""
    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_conn().get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        _raise_if_missing(uri, exc)
        raise
    digest = hashlib.sha256()
    for chunk in body.iter_chunks(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()
