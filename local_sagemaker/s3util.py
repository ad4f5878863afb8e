"""S3 helpers shared by the emulator: URI parsing, cached clients, prefix listing, transfers.

The runner and the model server read and write S3 through the emulator's own endpoint, exactly
like a SageMaker container would, so every transfer here goes through boto3.
"""

from __future__ import annotations

import functools
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local_sagemaker.iam import ADMIN_ACCESS_KEY

TRANSFER_THREADS = 8

T = TypeVar("T")


class S3UriError(ValueError):
    """An S3 URI that is not of the form s3://bucket[/key]."""


class S3TransferError(Exception):
    """A transfer failed; ``uri`` names the object, ``cause`` is botocore's error."""

    def __init__(self, uri: str, cause: Exception) -> None:
        super().__init__(f"{uri}: {cause}")
        self.uri, self.cause = uri, cause


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``; the key may be empty."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise S3UriError(f"Expected an S3 URI like s3://bucket/key, got {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise S3UriError(f"S3 URI {uri!r} has no bucket name")
    return bucket, key


def join_s3_uri(base: str, *parts: str) -> str:
    """Join path parts onto an S3 URI with single slashes."""
    out = base.rstrip("/")
    for part in parts:
        out += "/" + part.strip("/")
    return out


@functools.lru_cache(maxsize=32)
def aws_client(service: str, endpoint_url: str, region: str, access_key: str = ADMIN_ACCESS_KEY) -> Any:
    """A thread-safe boto3 client for the emulator, cached: building one costs ~50 ms.

    Fixed credentials keep a developer's real AWS profile out of the picture; ``access_key``
    says who calls (``iam.ADMIN_ACCESS_KEY``: the emulator itself, never checked;
    ``iam.EXECUTION_ACCESS_KEY``: a job or model server acting as the execution role).
    """
    session = boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key="test", region_name=region
    )
    config = Config(
        max_pool_connections=32,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": "path"},
    )
    return session.client(service, endpoint_url=endpoint_url, config=config)


def list_keys(client: Any, uri: str) -> list[str]:
    """All object keys under an S3 prefix (SageMaker's S3Prefix: a plain string prefix), sorted."""
    bucket, prefix = parse_s3_uri(uri)
    keys: list[str] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []) if not obj["Key"].endswith("/"))
    return sorted(keys)


def relative_key(prefix: str, key: str) -> str:
    """Path of ``key`` relative to the S3Prefix it was listed under, as SageMaker lays it out.

    ``data/train`` + ``data/train/a.csv`` gives ``a.csv``; a prefix naming one object gives its
    basename; a partial prefix (``data/tr``) keeps the rest of the key from the last slash.
    """
    if key == prefix:
        return key.rsplit("/", 1)[-1]
    rest = key[len(prefix) :]
    if prefix.endswith("/") or rest.startswith("/") or not prefix:
        return rest.lstrip("/")
    return key[len(prefix.rsplit("/", 1)[0]) + 1 :] if "/" in prefix else key


def _transfer_all(transfer: Callable[[T], None], items: list[T]) -> None:
    """Run ``transfer`` on every item: inline for one, on up to TRANSFER_THREADS threads for more.
    A failing transfer raises here."""
    if len(items) == 1:
        transfer(items[0])
    elif items:
        with ThreadPoolExecutor(min(TRANSFER_THREADS, len(items))) as pool:
            list(pool.map(transfer, items))


def download_objects(client: Any, items: Iterable[tuple[str, str, Path]]) -> int:
    """Download ``(bucket, key, local_path)`` items in parallel; returns how many were written."""
    items = list(items)

    def fetch(item: tuple[str, str, Path]) -> None:
        bucket, key, path = item
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            client.download_file(bucket, key, str(path))
        except (ClientError, BotoCoreError) as exc:
            raise S3TransferError(f"s3://{bucket}/{key}", exc) from exc

    _transfer_all(fetch, items)
    return len(items)


def download_uri(client: Any, uri: str, path: Path) -> None:
    """Download one object to ``path``."""
    bucket, key = parse_s3_uri(uri)
    download_objects(client, [(bucket, key, path)])


def _put(client: Any, path: Path, bucket: str, key: str) -> None:
    """``upload_file`` with S3's own error: boto3 wraps it in S3UploadFailedError (not a
    ClientError) whose cause is the ClientError with the code and message."""
    try:
        client.upload_file(str(path), bucket, key)
    except S3UploadFailedError as exc:
        cause = exc.__context__ if isinstance(exc.__context__, ClientError | BotoCoreError) else exc
        raise S3TransferError(f"s3://{bucket}/{key}", cause) from exc
    except (ClientError, BotoCoreError) as exc:
        raise S3TransferError(f"s3://{bucket}/{key}", exc) from exc


def upload_file(client: Any, path: Path, uri: str) -> None:
    """Upload one local file to an S3 URI; a failure raises S3TransferError naming the object."""
    bucket, key = parse_s3_uri(uri)
    _put(client, path, bucket, key)


def upload_dir(client: Any, local_dir: Path, uri: str) -> int:
    """Upload every file under ``local_dir`` to ``uri/<relative path>``; returns the count.
    A failure raises S3TransferError naming the object."""
    files = sorted(p for p in Path(local_dir).rglob("*") if p.is_file())
    bucket, prefix = parse_s3_uri(uri)
    prefix = prefix.rstrip("/")

    def put(path: Path) -> None:
        rel = path.relative_to(local_dir).as_posix()
        _put(client, path, bucket, f"{prefix}/{rel}" if prefix else rel)

    _transfer_all(put, files)
    return len(files)


def make_tarball(src_dir: Path, dest: Path) -> Path:
    """Gzip-tar the content of ``src_dir`` (members relative to it), as SageMaker packs model.tar.gz."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz", compresslevel=6) as tar:
        for child in sorted(Path(src_dir).iterdir()):
            tar.add(child, arcname=child.name)
    return dest


def extract_tarball(archive: Path, dest_dir: Path) -> None:
    """Extract a (gzipped) tarball, refusing members that would escape ``dest_dir``."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(dest_dir, filter="data")


def fetch_tarball(client: Any, uri: str, dest_dir: Path) -> None:
    """Download ``uri`` (a .tar.gz) and extract it into ``dest_dir``."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir.parent) as tmp:
        archive = Path(tmp) / "archive.tar.gz"
        download_uri(client, uri, archive)
        extract_tarball(archive, dest_dir)
