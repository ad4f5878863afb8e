"""Model registry: model package groups and (versioned or unversioned) model packages."""

from __future__ import annotations

from typing import Any

from local_sagemaker.api.base import Context, describe, list_page, operation, require
from local_sagemaker.protocol import AwsError, validation_error
from local_sagemaker.state import now

PACKAGE_SUMMARY = ("ModelPackageName", "ModelPackageGroupName", "ModelPackageVersion",
                   "ModelPackageArn", "ModelPackageDescription", "CreationTime",
                   "ModelPackageStatus", "ModelApprovalStatus")


def _group_arn(ctx: Context, group: str) -> str:
    return ctx.settings.arn("model-package-group", group)


def _group_name(name_or_arn: str) -> str:
    return name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn


def _missing_group(name: str) -> str:
    return f"ModelPackageGroup {name} does not exist."


def find_package(ctx: Context, name_or_arn: str) -> dict[str, Any] | None:
    """A package by ARN (versioned or not) or by unversioned name."""
    arn = name_or_arn if name_or_arn.startswith("arn:") else ctx.settings.arn("model-package", name_or_arn)
    return ctx.store.get("model_packages", arn.lower())


def _require_package(ctx: Context, name_or_arn: str) -> dict[str, Any]:
    package = find_package(ctx, name_or_arn)
    if package is None:
        raise validation_error(f"ModelPackage {name_or_arn} does not exist.")
    return package


# -- groups ----------------------------------------------------------------------------------
@operation("CreateModelPackageGroup")
def create_model_package_group(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    name = params["ModelPackageGroupName"]
    arn = _group_arn(ctx, name)
    record = {**params, "ModelPackageGroupArn": arn, "CreationTime": now(),
              "ModelPackageGroupStatus": "Completed", "_next_version": 1}
    ctx.store.insert("model_package_groups", name, record,
                     exists=lambda _: validation_error(f"Model Package Group already exists: {arn}"))
    return {"ModelPackageGroupArn": arn}


@operation("DescribeModelPackageGroup")
def describe_model_package_group(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    name = _group_name(params["ModelPackageGroupName"])
    return describe(require(ctx, "model_package_groups", name, _missing_group(name)))


@operation("ListModelPackageGroups")
def list_model_package_groups(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return list_page(ctx.store.values("model_package_groups"), params,
                     result_key="ModelPackageGroupSummaryList", name_key="ModelPackageGroupName",
                     summary_keys=("ModelPackageGroupName", "ModelPackageGroupArn",
                                   "ModelPackageGroupDescription", "CreationTime",
                                   "ModelPackageGroupStatus"))


@operation("DeleteModelPackageGroup")
def delete_model_package_group(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    name = _group_name(params["ModelPackageGroupName"])
    require(ctx, "model_package_groups", name, _missing_group(name))
    if any(p.get("ModelPackageGroupName") == name for p in ctx.store.values("model_packages")):
        raise AwsError("ConflictException", f"Model Package Group {name} still contains model "
                                            "packages; delete them first.")
    ctx.store.delete("model_package_groups", name)
    return {}


# -- packages --------------------------------------------------------------------------------
@operation("CreateModelPackage")
def create_model_package(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    group = params.get("ModelPackageGroupName")
    if group and params.get("ModelPackageName"):
        raise validation_error("Both ModelPackageName and ModelPackageGroupName are provided in "
                               "the input. Cannot determine which one to use.")
    if not group and not params.get("ModelPackageName"):
        raise validation_error("Missing ARN: give ModelPackageGroupName (a versioned package) "
                               "or ModelPackageName (an unversioned one).")
    created = now()
    record = {**params, "CreationTime": created, "LastModifiedTime": created,
              "ModelPackageStatus": "Completed",
              "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
              "CertifyForMarketplace": params.get("CertifyForMarketplace", False)}
    if group:
        group = _group_name(group)
        with ctx.store.edit("model_package_groups", group) as group_record:
            if group_record is None:
                raise validation_error(_missing_group(group))
            version = group_record["_next_version"]
            group_record["_next_version"] = version + 1
        arn = ctx.settings.arn("model-package", f"{group}/{version}")
        record.update(ModelPackageGroupName=group, ModelPackageName=group,
                      ModelPackageVersion=version, ModelPackageType="Versioned",
                      ModelApprovalStatus=params.get("ModelApprovalStatus", "PendingManualApproval"))
    else:
        arn = ctx.settings.arn("model-package", params["ModelPackageName"])
        record["ModelPackageType"] = "Unversioned"
    record["ModelPackageArn"] = arn
    ctx.store.insert("model_packages", arn.lower(), record, exists=lambda _: validation_error(
        f"Model package {arn} already exists."))
    return {"ModelPackageArn": arn}


@operation("DescribeModelPackage")
def describe_model_package(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return describe(_require_package(ctx, params["ModelPackageName"]))


@operation("UpdateModelPackage")
def update_model_package(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    key = _require_package(ctx, params["ModelPackageArn"])["ModelPackageArn"].lower()
    with ctx.store.edit("model_packages", key) as record:
        for field in ("ModelApprovalStatus", "ApprovalDescription", "InferenceSpecification",
                      "SourceUri", "ModelCard", "ModelLifeCycle"):
            if field in params:
                record[field] = params[field]
        metadata = dict(record.get("CustomerMetadataProperties") or {})
        metadata.update(params.get("CustomerMetadataProperties") or {})
        for removed in params.get("CustomerMetadataPropertiesToRemove") or []:
            metadata.pop(removed, None)
        if metadata or "CustomerMetadataProperties" in record:
            record["CustomerMetadataProperties"] = metadata
        if params.get("AdditionalInferenceSpecificationsToAdd"):
            record.setdefault("AdditionalInferenceSpecifications", []).extend(
                params["AdditionalInferenceSpecificationsToAdd"])
        record["LastModifiedTime"] = now()
        arn = record["ModelPackageArn"]
    return {"ModelPackageArn": arn}


@operation("ListModelPackages")
def list_model_packages(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    packages = ctx.store.values("model_packages")
    group = params.get("ModelPackageGroupName")
    package_type = params.get("ModelPackageType") or ("Versioned" if group else "Unversioned")
    if package_type != "Both":
        packages = [p for p in packages if p["ModelPackageType"] == package_type]
    if group:
        group = _group_name(group)
        packages = [p for p in packages if p.get("ModelPackageGroupName") == group]
    if params.get("ModelApprovalStatus"):
        packages = [p for p in packages if p.get("ModelApprovalStatus") == params["ModelApprovalStatus"]]
    return list_page(packages, params, result_key="ModelPackageSummaryList",
                     name_key="ModelPackageName", summary_keys=PACKAGE_SUMMARY,
                     tiebreak="ModelPackageVersion")


@operation("DeleteModelPackage")
def delete_model_package(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    package = _require_package(ctx, params["ModelPackageName"])
    ctx.store.delete("model_packages", package["ModelPackageArn"].lower())
    return {}
