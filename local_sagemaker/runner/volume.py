"""The ML storage volume (``VolumeSizeInGB``): what SageMaker does when /opt/ml outgrows it.

On instance types without instance storage SageMaker attaches an EBS volume of
``VolumeSizeInGB`` for ``/opt/ml`` (inputs in File mode, the model, outputs). A sandbox here is a
directory on the machine's disk with no size of its own, so the emulator counts what the
platform puts in and what the job leaves, and fails the job where SageMaker would have run out of
space, with SageMaker's reasons: ``ClientError: Data download failed:Insufficient disk space``
(aws/sagemaker-python-sdk#128) when the inputs do not fit, ``ClientError: Artifact upload
failed:Insufficient disk space`` (huggingface/blog#114) when the model and outputs cannot be
packed. Instance types with NVMe instance storage (ml.p4d, ml.g4dn, ml.g5, ... as the
ResourceConfig reference says) use that storage instead, so they are not limited here.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from .. import s3util
from .context import JobFailure
from .sandbox import Sandbox

GIB = 1024**3
DOWNLOAD_FULL = "ClientError: Data download failed:Insufficient disk space"
UPLOAD_FULL = "ClientError: Artifact upload failed:Insufficient disk space"
# families with local NVMe storage: a "d" variant (p4d, g4dn, m5d, c6id) or these families
_INSTANCE_STORAGE = re.compile(r"^ml\.([a-z]+\d+[a-z]*d[a-z]*|g5|g6|g6e|p5|p5e|p5en|trn1|trn1n|inf2)\.")
NO_SPACE_MARKERS = ("No space left on device", "[Errno 28]")


def volume_bytes(instance_type: str | None, size_gb: int | None) -> int | None:
    """The byte limit of an instance's /opt/ml, or None when SageMaker sets none here."""
    if not size_gb or (instance_type and _INSTANCE_STORAGE.match(instance_type)):
        return None
    return int(size_gb) * GIB


def used_bytes(box: Sandbox) -> int:
    """Bytes of the files under the instance's /opt/ml."""
    total = 0
    for root, _dirs, files in os.walk(box.opt_ml):
        for name in files:
            try:
                total += (Path(root) / name).lstat().st_size
            except OSError:
                continue
    return total


def _check(boxes: list[Sandbox], limit: int | None, reason: str, what: str) -> None:
    if limit is None:
        return
    for box in boxes:
        used = used_bytes(box)
        if used > limit:
            raise JobFailure(
                f"{reason}. {what} of {box.host} take {used / GIB:.2f} GB, more than its ML "
                f"storage volume (VolumeSizeInGB: {limit // GIB}); request a larger VolumeSizeInGB."
            )


def check_inputs(boxes: list[Sandbox], limit: int | None) -> None:
    """After staging: the inputs (and config) must fit in each instance's volume."""
    _check(boxes, limit, DOWNLOAD_FULL, "The input data in /opt/ml")


def check_outputs(boxes: list[Sandbox], limit: int | None) -> None:
    """Before uploading: what the job left in /opt/ml must fit in each instance's volume."""
    _check(boxes, limit, UPLOAD_FULL, "/opt/ml's model, output and input files")


def pack(box: Sandbox, source: Path, name: str) -> Path:
    """``source`` gzip-tarred on the instance's volume, as SageMaker packs model.tar.gz; a full
    disk fails the job with SageMaker's reason. (A script that fills the disk can still exit 0:
    the toolkit cannot write its failure file then, aws/sagemaker-training-toolkit#204.)"""
    try:
        return s3util.make_tarball(source, box.root / name)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        (box.root / name).unlink(missing_ok=True)
        raise JobFailure(
            f"{UPLOAD_FULL}. Packing {name} on {box.host} ran out of disk space ({exc.strerror}); "
            "the disk holding /opt/ml is full."
        ) from exc


def ran_out_of_space(tail: list[str]) -> str | None:
    """The line of a failed process's output that says it ran out of disk space, if any."""
    for line in reversed(tail):
        if any(marker in line for marker in NO_SPACE_MARKERS):
            return line.strip()
    return None
