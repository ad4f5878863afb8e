"""Integrity before serving: the S3 objects a version's endpoint would load must be the ones
registered.

A model package points at S3 objects (the model artifact and the serving code tarball that
``SAGEMAKER_SUBMIT_DIRECTORY`` names); anyone with write access to the bucket can replace them
after the quality gate approved the version, and the endpoint would then serve a model nobody
evaluated. So registration records each object's sha256 in the version's metadata, and every
deployment hashes the objects again (streaming) before it creates anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sagemaker_mlops.registry import ModelVersion

ARTIFACT_SHA256_KEY = "artifact_sha256"
SOURCEDIR_SHA256_KEY = "sourcedir_sha256"


class IntegrityError(RuntimeError):
    """An object the version serves differs from (or cannot be matched to) its registration."""


@dataclass(frozen=True)
class ServedObject:
    label: str
    uri: str
    metadata_key: str


def served_objects(version: ModelVersion) -> list[ServedObject]:
    """The S3 objects an endpoint of ``version`` loads: the artifact, and the serving code tarball
    when the package names one."""
    objects = [ServedObject("model artifact", version.model_data_url, ARTIFACT_SHA256_KEY)]
    if version.sourcedir_uri:
        objects.append(ServedObject("serving code", version.sourcedir_uri, SOURCEDIR_SHA256_KEY))
    return objects


def verify(version: ModelVersion, sha256_of: Any) -> list[str]:
    """Hash each served object with ``sha256_of(uri)`` and compare with the registry's record.

    Returns one line per verified object; raises IntegrityError naming the URI and both hashes
    on a mismatch, or what is missing when there is nothing to compare with.
    """
    checked = []
    for item in served_objects(version):
        if not item.uri:
            raise IntegrityError(f"version {version.version} names no {item.label} in its "
                                 "InferenceSpecification")
        recorded = version.metadata.get(item.metadata_key)
        if not recorded:
            raise IntegrityError(
                f"version {version.version} has no {item.metadata_key} in its registry metadata, "
                f"so its {item.label} {item.uri} cannot be verified; register it with the "
                "pipeline's register_model task, which records it"
            )
        actual = sha256_of(item.uri)
        if actual != recorded:
            # hashes before the tail: a one-line alert reason is cut at 400 characters
            raise IntegrityError(
                f"{item.label} {item.uri} changed since registration: sha256 {actual} now, "
                f"{recorded} registered; the endpoint is untouched"
            )
        checked.append(f"{item.label} {item.uri} sha256 {actual} matches the registration")
    return checked
