"""Model registry look-ups: the champion, the version a run registered, a chosen version.

Functions take a boto3 SageMaker client (``SageMakerHook(...).conn``), so they work the same
against AWS and the offline emulator.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

# error codes SageMaker uses for a model package group that does not exist
_MISSING_GROUP_CODES = {"ValidationException", "ResourceNotFound", "ResourceNotFoundException"}
RUN_ID_KEY = "run_id"
# the S3 URI of the version's training-data profile.json: the next run's data-check baseline
DATA_PROFILE_KEY = "data_profile"
SUBMIT_DIRECTORY_ENV = "SAGEMAKER_SUBMIT_DIRECTORY"

# CustomerMetadataProperties (botocore's SageMaker model, CustomerMetadataKey / -Value): at most 50
# entries; keys 1-128 and values 1-256 characters of [\p{L}\p{Z}\p{N}_.:/=+\-@]. Other characters
# are rewritten so the text keeps its meaning (the verdict, comparisons, percentages), in this order:
METADATA_REWRITES = (
    (">=", " ge "), ("<=", " le "), ("!=", " ne "), ("==", " eq "), (">", " gt "), ("<", " lt "),
    ("%", " pct"), ("&", " and "), ("|", " / "), ("\\", "/"), ("#", "no. "), ("*", "x"),
    ("\u2212", "-"), ("\u00b1", "+-"), ("\u2026", "..."), ("\u2013", "-"), ("\u2014", "-"),
)
METADATA_MAX_ENTRIES, METADATA_KEY_MAX, METADATA_VALUE_MAX = 50, 128, 256
# brackets, quotes and list punctuation become spaces; anything else outside the set becomes "_"
_METADATA_SPACES = set("()[]{}\"'`,;!?")


def _metadata_char(char: str) -> str:
    if char in "_.:/=+-@" or unicodedata.category(char)[0] in "LNZ":
        return char
    return " " if char in _METADATA_SPACES or char.isspace() else "_"


def metadata_text(text: object, max_length: int = METADATA_VALUE_MAX) -> str:
    """``text`` in the character set SageMaker accepts for a metadata key or value (see above)."""
    value = unicodedata.normalize("NFC", str(text))  # "u" + combining mark -> one letter
    for old, new in METADATA_REWRITES:
        value = value.replace(old, new)
    value = "".join(_metadata_char(c) for c in value)
    return re.sub(r" {2,}", " ", value).strip()[:max_length].strip()


def customer_metadata(metadata: Mapping[str, object]) -> dict[str, str]:
    """CustomerMetadataProperties the API accepts; entries whose value is empty are left out.

    The only place registry metadata is encoded: look-ups compare against ``metadata_text`` of the
    same value (e.g. the run id), so a run id with other characters still finds its version.
    """
    encoded = {metadata_text(k, METADATA_KEY_MAX): metadata_text(v) for k, v in metadata.items()}
    encoded = {k: v for k, v in encoded.items() if k and v}
    if len(encoded) > METADATA_MAX_ENTRIES:
        raise ValueError(f"{len(encoded)} metadata entries; SageMaker allows {METADATA_MAX_ENTRIES}")
    return encoded


class RegistryError(RuntimeError):
    """A registry state the pipeline cannot act on; the message says what to do."""


@dataclass(frozen=True)
class ModelVersion:
    arn: str
    version: int
    approval_status: str
    model_data_url: str
    evaluation_uri: str | None
    metadata: dict[str, str]
    # SAGEMAKER_SUBMIT_DIRECTORY: the serving code tarball, when the package names one
    sourcedir_uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_version(client: Any, arn: str) -> ModelVersion:
    package = client.describe_model_package(ModelPackageName=arn)
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    statistics = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    return ModelVersion(
        arn=package["ModelPackageArn"],
        version=int(package.get("ModelPackageVersion") or arn.rsplit("/", 1)[-1]),
        approval_status=package.get("ModelApprovalStatus", ""),
        model_data_url=containers[0].get("ModelDataUrl", "") if containers else "",
        evaluation_uri=statistics.get("S3Uri"),
        metadata=dict(package.get("CustomerMetadataProperties") or {}),
        sourcedir_uri=(containers[0].get("Environment") or {}).get(SUBMIT_DIRECTORY_ENV)
        if containers else None,
    )


def _summaries(client: Any, group: str, **filters: Any) -> Iterator[dict[str, Any]]:
    """Versions of a group, newest first; nothing when the group does not exist."""
    kwargs = {
        "ModelPackageGroupName": group,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 100,
        **filters,
    }
    while True:
        try:
            page = client.list_model_packages(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING_GROUP_CODES:
                return
            raise
        yield from page.get("ModelPackageSummaryList", [])
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


def find_champion(client: Any, group: str) -> ModelVersion | None:
    """The latest Approved version of the group (the model in service), or None."""
    for summary in _summaries(client, group, ModelApprovalStatus="Approved"):
        return describe_version(client, summary["ModelPackageArn"])
    return None


def check_same_task(champion: ModelVersion | None, problem_type: str, target: str) -> None:
    """Refuse to mix tasks in one group: its champion must solve the same problem.

    A champion for another target or problem type could neither be scored on this run's test
    split nor stand in for the new model at the endpoint.
    """
    if champion is None:
        return
    recorded = {k: champion.metadata.get(k) for k in ("problem_type", "target")}
    wanted = {"problem_type": metadata_text(problem_type), "target": metadata_text(target)}
    mismatched = {k: v for k, v in recorded.items() if v is not None and v != wanted[k]}
    if mismatched:
        found = ", ".join(f"{k} {v!r}" for k, v in mismatched.items())
        asked = ", ".join(f"{k} {wanted[k]!r}" for k in mismatched)
        raise RegistryError(
            f"the champion (version {champion.version}) of this model package group has {found}, "
            f"this run {asked}; another task needs its own pipeline spec (its own "
            "model_package_group, endpoint_name and s3_prefix)"
        )


def data_profile_uri(champion: ModelVersion | None) -> str | None:
    """The champion's training-data profile (None: no champion, or one registered before the
    profile was recorded; the data checks then check the new data by itself)."""
    if champion is None:
        return None
    uri = champion.metadata.get(DATA_PROFILE_KEY, "")
    return uri if uri.startswith("s3://") else None


def find_run_version(client: Any, group: str, run_id: str, scan: int = 50) -> ModelVersion | None:
    """The version registered by this run id, if any (scans the ``scan`` newest versions)."""
    for index, summary in enumerate(_summaries(client, group)):
        if index >= scan:
            break
        version = describe_version(client, summary["ModelPackageArn"])
        if version.metadata.get(RUN_ID_KEY) == metadata_text(run_id):
            return version
    return None


def find_version(client: Any, group: str, number: int | None) -> ModelVersion:
    """The version to deploy: number ``number``, or the latest Approved one; must be Approved."""
    if number is None:
        version = find_champion(client, group)
        if version is None:
            raise RegistryError(
                f"model package group {group!r} has no Approved version to deploy; "
                "run mlops_pipeline or approve a version first"
            )
        return version
    for summary in _summaries(client, group):
        if int(summary.get("ModelPackageVersion", 0)) == number:
            version = describe_version(client, summary["ModelPackageArn"])
            break
    else:
        raise RegistryError(f"model package group {group!r} has no version {number}")
    if version.approval_status != "Approved":
        raise RegistryError(
            f"version {number} of {group!r} is {version.approval_status}, not Approved; "
            "only Approved versions are deployed (approve it in the registry first)"
        )
    return version


def reject_version(client: Any, arn: str, reason: str) -> None:
    """Mark a version Rejected, keeping why in its approval description."""
    client.update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus="Rejected",
        ApprovalDescription=reason[:1000],
    )
