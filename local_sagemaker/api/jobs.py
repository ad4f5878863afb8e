"""Processing and training job operations: Create, Describe, List, Stop."""

from __future__ import annotations

from typing import Any

from local_sagemaker import images, s3util
from local_sagemaker.api.base import Context, describe, list_page, operation, require
from local_sagemaker.jobs import PROCESSING, TRAINING, JobKind
from local_sagemaker.protocol import AwsError, validation_error


def _missing(ctx: Context, kind: JobKind, name: str) -> str:
    if kind is TRAINING:
        return "Requested resource not found."
    return f"Could not find processing job '{ctx.settings.arn(kind.arn_type, name)}'."


def _check_image(uri: str | None, member: str) -> None:
    """A job runs in its image's environment: an image the emulator has none for (or whose
    environment is not built) is refused before any job record exists."""
    if not uri:
        raise validation_error(f"{member} is required by the local emulator: jobs run in their "
                               f"image's environment. Supported images: {images.supported_images()}")
    try:
        images.resolve(uri)
    except images.UnsupportedImage as exc:
        raise validation_error(str(exc)) from None


def _create(ctx: Context, kind: JobKind, params: dict[str, Any]) -> dict[str, Any]:
    record = ctx.jobs.new_record(kind, params)
    arn = record[kind.arn_key]

    def exists(_old: dict[str, Any]) -> Exception:
        noun = "Training job names" if kind is TRAINING else "Job names"
        return AwsError("ResourceInUse", f"{noun} must be unique within an AWS account and region, "
                                         f"and a job with this name already exists ({arn})")

    ctx.store.insert(kind.table, params[kind.name_key], record, exists=exists)
    ctx.jobs.submit(kind, params)
    return {kind.arn_key: arn}


def _check_training_inputs(ctx: Context, params: dict[str, Any]) -> None:
    """CreateTrainingJob itself rejects S3 channels with nothing under them (processing jobs
    fail later instead)."""
    client = s3util.aws_client("s3", ctx.settings.endpoint_url, ctx.settings.region)
    for channel in params.get("InputDataConfig") or []:
        uri = ((channel.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri")
        if not uri:
            continue
        try:
            bucket = s3util.parse_s3_uri(uri)[0]
        except s3util.S3UriError as exc:
            raise validation_error(str(exc)) from None
        try:
            keys = s3util.list_keys(client, uri)
        except Exception:  # a missing bucket reads as "no objects", as AWS words it
            keys = []
        if not keys:
            raise validation_error(
                f"No S3 objects found under S3 URL \"{uri}\" given in input data source. Please "
                f"ensure that the bucket exists in the selected region ({ctx.settings.region}), "
                f"that objects exist under that S3 prefix, and that the role "
                f"\"{params.get('RoleArn')}\" has \"s3:ListBucket\" permissions on bucket \"{bucket}\".")


def _describe(ctx: Context, kind: JobKind, params: dict[str, Any]) -> dict[str, Any]:
    name = params[kind.name_key]
    return describe(require(ctx, kind.table, name, _missing(ctx, kind, name)))


def _list(ctx: Context, kind: JobKind, params: dict[str, Any]) -> dict[str, Any]:
    return list_page(ctx.store.values(kind.table), params, result_key=f"{kind.label}JobSummaries",
                     name_key=kind.name_key, status_key=kind.status_key, summary_keys=(
                         kind.name_key, kind.arn_key, "CreationTime", kind.end_key,
                         "LastModifiedTime", kind.status_key, "FailureReason", "ExitMessage",
                         "SecondaryStatus"))


def _stop(ctx: Context, kind: JobKind, params: dict[str, Any]) -> dict[str, Any]:
    name = params[kind.name_key]
    record = require(ctx, kind.table, name, _missing(ctx, kind, name), code="ResourceNotFound")
    if not ctx.jobs.stop(kind, name):
        raise validation_error(f"The request was rejected because the {kind.label.lower()} job "
                               f"is in status {record[kind.status_key]}.")
    return {}


@operation("CreateProcessingJob")
def create_processing_job(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    _check_image(params.get("AppSpecification", {}).get("ImageUri"), "AppSpecification.ImageUri")
    return _create(ctx, PROCESSING, params)


@operation("DescribeProcessingJob")
def describe_processing_job(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return _describe(ctx, PROCESSING, params)


@operation("ListProcessingJobs")
def list_processing_jobs(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return _list(ctx, PROCESSING, params)


@operation("StopProcessingJob")
def stop_processing_job(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return _stop(ctx, PROCESSING, params)


@operation("CreateTrainingJob")
def create_training_job(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    algorithm = params.get("AlgorithmSpecification", {})
    if algorithm.get("AlgorithmName") and not algorithm.get("TrainingImage"):
        raise validation_error(
            f"AlgorithmSpecification.AlgorithmName {algorithm['AlgorithmName']!r}: algorithm "
            "resources are not supported by the local emulator; give a TrainingImage")
    _check_image(algorithm.get("TrainingImage"), "AlgorithmSpecification.TrainingImage")
    _check_training_inputs(ctx, params)
    return _create(ctx, TRAINING, params)


@operation("DescribeTrainingJob")
def describe_training_job(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return _describe(ctx, TRAINING, params)


@operation("ListTrainingJobs")
def list_training_jobs(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return _list(ctx, TRAINING, params)


@operation("StopTrainingJob")
def stop_training_job(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return _stop(ctx, TRAINING, params)
