"""Carry moto's in-memory S3 across restarts, a killed emulator included: every S3 write the
emulator acknowledges is already on disk under ``DIR/s3/<bucket>/<key>``, loaded back at start.

moto keeps S3 in memory only. After each S3 request that can change content (anything but
GET/HEAD) and before its answer leaves the emulator, :meth:`S3Mirror.sync` compares moto's
buckets with what is on disk and writes or removes the objects that changed, so a ``SIGKILL``
loses nothing a client was told is stored (a job's retry finds its inputs). Only object bytes
survive (not metadata, versions or ACLs). Files are written to ``DIR/s3/.partial`` and renamed
into place, so a kill mid-write never leaves half an object; ``.partial`` is not a bucket
(bucket names cannot start with a dot).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from moto.s3.models import FakeKey, s3_backends

from local_sagemaker import s3util

log = logging.getLogger(__name__)
PARTIAL = ".partial"
READ_ONLY_METHODS = ("GET", "HEAD", "OPTIONS")


def _moto_objects() -> dict[str, dict[str, Any]]:
    """``{bucket: {key: FakeKey}}`` of every account moto holds (the current version of each key)."""
    found: dict[str, dict[str, Any]] = {}
    for account in list(s3_backends.keys()):
        partitions = s3_backends[account]
        for partition in list(partitions.keys()):  # S3 is one backend per partition ("aws")
            for name, bucket in list(partitions[partition].buckets.items()):
                found[name] = {key: obj for key, obj in bucket.keys.items()  # not delete markers
                               if isinstance(obj, FakeKey) and not key.endswith("/")}
    return found


class S3Mirror:
    """The on-disk copy of moto's S3 at ``root``; ``sync()`` after every write keeps it current."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._written: dict[tuple[str, str], Any] = {}  # what is on disk: (bucket, key) -> FakeKey
        self._buckets: set[str] = set()
        self._active = False  # off while load() refills moto from the disk

    def load(self, client: Any, region: str) -> int:
        """Recreate the buckets and objects kept at ``root``, then start mirroring."""
        count = 0
        shutil.rmtree(self.root / PARTIAL, ignore_errors=True)
        if self.root.is_dir():
            for bucket_dir in sorted(p for p in self.root.iterdir()
                                     if p.is_dir() and not p.name.startswith(".")):
                extra = {} if region == "us-east-1" else {
                    "CreateBucketConfiguration": {"LocationConstraint": region}}
                client.create_bucket(Bucket=bucket_dir.name, **extra)
                count += s3util.upload_dir(client, bucket_dir, f"s3://{bucket_dir.name}")
        with self._lock:
            current = _moto_objects()
            self._buckets = set(current)
            self._written = {(b, k): obj for b, keys in current.items() for k, obj in keys.items()}
            self._active = True
        return count

    def sync(self) -> None:
        """Write what changed in moto since the last sync; remove what was deleted."""
        with self._lock:
            if not self._active:
                return
            current = _moto_objects()
            for bucket in self._buckets - set(current):
                shutil.rmtree(self.root / bucket, ignore_errors=True)
            for bucket in set(current) - self._buckets:
                (self.root / bucket).mkdir(parents=True, exist_ok=True)
            self._buckets = set(current)
            seen = set()
            for bucket, keys in current.items():
                for key, obj in keys.items():
                    seen.add((bucket, key))
                    if self._written.get((bucket, key)) is not obj:
                        self._write(bucket, key, obj)
            for bucket, key in set(self._written) - seen:
                del self._written[(bucket, key)]
                if bucket in current:
                    self._remove(bucket, key)

    def _path(self, bucket: str, key: str) -> Path | None:
        base = (self.root / bucket).resolve()
        path = (base / key).resolve()
        if base not in path.parents:  # keys such as "../x" cannot be stored as files
            log.warning("not keeping s3://%s/%s: the key does not map to a file path", bucket, key)
            return None
        return path

    def _write(self, bucket: str, key: str, obj: Any) -> None:
        path = self._path(bucket, key)
        self._written[(bucket, key)] = obj
        if path is None:
            return
        staging = self.root / PARTIAL
        staging.mkdir(parents=True, exist_ok=True)
        tmp = staging / uuid.uuid4().hex
        try:
            tmp.write_bytes(obj.value)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
        except (OSError, ValueError) as exc:  # a key that is also a "directory" of another key
            tmp.unlink(missing_ok=True)
            log.warning("not keeping s3://%s/%s on disk: %s", bucket, key, exc)

    def _remove(self, bucket: str, key: str) -> None:
        path = self._path(bucket, key)
        if path is None:
            return
        path.unlink(missing_ok=True)
        base = (self.root / bucket).resolve()
        parent = path.parent
        while parent != base and base in parent.parents:
            try:
                parent.rmdir()  # only while empty
            except OSError:
                break
            parent = parent.parent

    def object_count(self) -> int:
        with self._lock:
            return len(self._written)
