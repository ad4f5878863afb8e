"""Copy job inputs from S3 into the sandboxes and outputs back, as the SageMaker agent does."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from .. import s3util
from .context import JobFailure
from .sandbox import Sandbox

DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")


@dataclass
class InputSpec:
    """One S3 input (training channel or processing input) and where each instance gets it."""

    name: str
    uri: str
    target: Callable[[Sandbox], Path]
    distribution: str = "FullyReplicated"
    data_type: str = "S3Prefix"


def no_objects_reason(uri: str, region: str) -> str:
    """SageMaker's message for an input URI with nothing under it."""
    bucket = uri[len("s3://") :].split("/", 1)[0]
    return (
        f'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source. '
        f"Please ensure that the bucket exists in the selected region ({region}), that objects "
        f'exist under that S3 prefix, and that the role has "s3:ListBucket" permissions on '
        f'bucket "{bucket}".'
    )


def _client_error(action: str, uri: str, exc: Exception) -> JobFailure:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        detail = f"{err.get('Code', 'Error')}: {err.get('Message') or exc}"
    else:
        detail = str(exc)
    return JobFailure(f"ClientError: {action} {uri} failed. {detail}")


def _objects(client: Any, spec: InputSpec, region: str) -> list[tuple[str, str, str]]:
    """``(bucket, key, relative path)`` of every object the input names."""
    try:
        bucket, prefix = s3util.parse_s3_uri(spec.uri)
    except s3util.S3UriError as exc:
        raise JobFailure(f"ClientError: input {spec.name!r}: {exc}") from exc
    if spec.data_type == "S3Prefix":
        try:
            keys = s3util.list_keys(client, spec.uri)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchBucket", "404"):
                raise JobFailure(no_objects_reason(spec.uri, region)) from exc
            raise _client_error("Listing", spec.uri, exc) from exc
        objects = [(bucket, k, s3util.relative_key(prefix, k)) for k in keys]
    elif spec.data_type == "ManifestFile":
        objects = _manifest_objects(client, spec.uri, region)
    else:
        raise JobFailure(
            f"ClientError: input {spec.name!r}: S3DataType {spec.data_type!r} is not supported "
            "by the local emulator (use S3Prefix or ManifestFile)"
        )
    if not objects:
        raise JobFailure(no_objects_reason(spec.uri, region))
    return objects


def _manifest_objects(client: Any, uri: str, region: str) -> list[tuple[str, str, str]]:
    """Objects listed in a SageMaker manifest: ``[{"prefix": "s3://..."}, "rel/key", ...]``."""
    bucket, key = s3util.parse_s3_uri(uri)
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        raise JobFailure(no_objects_reason(uri, region)) from exc
    try:
        manifest = json.loads(body)
        base_bucket, base_prefix = s3util.parse_s3_uri(manifest[0]["prefix"])
        return [(base_bucket, base_prefix + rel, rel) for rel in manifest[1:]]
    except (ValueError, KeyError, IndexError, TypeError, s3util.S3UriError) as exc:
        raise JobFailure(
            f'ClientError: manifest file {uri} is not a valid manifest (expected [{{"prefix": '
            f'"s3://..."}}, "relative/key", ...]): {exc}'
        ) from exc


def stage_inputs(client: Any, region: str, specs: list[InputSpec], boxes: list[Sandbox]) -> None:
    """Download every input into every sandbox (sharded round-robin by key when asked)."""
    items: list[tuple[str, str, Path]] = []
    for spec in specs:
        if spec.distribution not in DISTRIBUTIONS:
            raise JobFailure(
                f"ClientError: input {spec.name!r}: S3DataDistributionType must be one of "
                f"{', '.join(DISTRIBUTIONS)}, got {spec.distribution!r}"
            )
        objects = _objects(client, spec, region)
        for index, box in enumerate(boxes):
            target = spec.target(box)
            target.mkdir(parents=True, exist_ok=True)
            mine = (
                objects if spec.distribution == "FullyReplicated" else objects[index :: len(boxes)]
            )
            items.extend((bucket, key, target / rel) for bucket, key, rel in mine)
    try:
        s3util.download_objects(client, items)
    except s3util.S3TransferError as exc:
        raise _client_error("Downloading input data from", exc.uri, exc.cause) from exc


def upload_dir(client: Any, local_dir: Path, uri: str) -> int:
    """Upload a directory's files to an S3 prefix; a failure becomes the job's FailureReason
    (``ClientError: Uploading output to s3://<the object> failed. <S3 code>: <message>``)."""
    try:
        return s3util.upload_dir(client, local_dir, uri)
    except s3util.S3TransferError as exc:
        raise _client_error("Uploading output to", exc.uri, exc.cause) from exc
    except s3util.S3UriError as exc:
        raise _client_error("Uploading output to", uri, exc) from exc


def upload_file(client: Any, path: Path, uri: str) -> None:
    try:
        s3util.upload_file(client, path, uri)
    except s3util.S3TransferError as exc:
        raise _client_error("Uploading output to", exc.uri, exc.cause) from exc
    except s3util.S3UriError as exc:
        raise _client_error("Uploading output to", uri, exc) from exc
