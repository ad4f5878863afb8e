"""Carry moto's in-memory S3 across restarts: on a clean stop every object is written under
``DIR/s3/<bucket>/<key>``, and loaded back at the next start.

Only object bytes survive (not metadata, versions or ACLs), and only through a clean stop
(SIGTERM / Ctrl-C): a killed emulator loses what changed since the last clean stop.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from local_sagemaker import s3util

log = logging.getLogger(__name__)


def save(client: Any, root: Path) -> int:
    """Replace the snapshot at ``root`` with the current S3 content; returns the object count."""
    staging = root.with_name(root.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    count = 0
    for bucket in client.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        base = (staging / name).resolve()
        base.mkdir()
        items = []
        for key in s3util.list_keys(client, f"s3://{name}"):
            path = (base / key).resolve()
            if base not in path.parents:  # keys such as "../x" cannot be stored as files
                log.warning("not saving s3://%s/%s: the key does not map to a file path", name, key)
                continue
            items.append((name, key, path))
        count += s3util.download_objects(client, items)
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    return count


def load(client: Any, root: Path, region: str) -> int:
    """Recreate the buckets and objects of the snapshot at ``root``; returns the object count."""
    if not root.is_dir():
        return 0
    count = 0
    for bucket_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        extra = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        client.create_bucket(Bucket=bucket_dir.name, **extra)
        count += s3util.upload_dir(client, bucket_dir, f"s3://{bucket_dir.name}")
    return count
