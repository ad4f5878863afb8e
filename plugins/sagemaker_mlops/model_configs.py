"""Request bodies for a registered model version and its serverless endpoint.

CreateModelPackage (beyond what the provider's operator sets), CreateModel, CreateEndpointConfig:
pure functions, so each request can be checked against botocore's SageMaker model in unit tests.
"""

from __future__ import annotations

from typing import Any

from sagemaker_mlops.registry import customer_metadata

INFERENCE_PROGRAM = "inference.py"
CONTENT_TYPES = ["text/csv", "application/json"]
SERVERLESS_VARIANT = "AllTraffic"


def inference_environment(sourcedir_uri: str, region: str) -> dict[str, str]:
    """How the scikit-learn serving container finds our inference.py."""
    return {
        "SAGEMAKER_PROGRAM": INFERENCE_PROGRAM,
        "SAGEMAKER_SUBMIT_DIRECTORY": sourcedir_uri,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": region,
    }


def model_package_extras(
    *, image_uri: str, model_artifact: str, sourcedir_uri: str, region: str,
    evaluation_json_uri: str, metadata: dict[str, str], description: str, approval_status: str,
) -> dict[str, Any]:
    """Fields of CreateModelPackage beyond what SageMakerRegisterModelVersionOperator sets.

    Passed as its ``extras``: they replace its text/csv-only InferenceSpecification. ``metadata``
    is rewritten to the API's character set (``registry.customer_metadata``); the full verdict
    stays in verdict.json and the description.
    """
    return {
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": image_uri,
                    "ModelDataUrl": model_artifact,
                    "Environment": inference_environment(sourcedir_uri, region),
                }
            ],
            "SupportedContentTypes": CONTENT_TYPES,
            "SupportedResponseMIMETypes": CONTENT_TYPES,
        },
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": evaluation_json_uri}
            }
        },
        "CustomerMetadataProperties": customer_metadata(metadata),
        "ModelPackageDescription": description[:1024],
        "ModelApprovalStatus": approval_status,
    }


def model_config(*, name: str, model_package_arn: str, role_arn: str) -> dict[str, Any]:
    """CreateModel from a registered model package version."""
    return {
        "ModelName": name,
        "ExecutionRoleArn": role_arn,
        "Containers": [{"ModelPackageName": model_package_arn}],
    }


def serverless_endpoint_config(
    *, name: str, model_name: str, memory_mb: int, max_concurrency: int
) -> dict[str, Any]:
    """CreateEndpointConfig with one serverless variant."""
    return {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": SERVERLESS_VARIANT,
                "ModelName": model_name,
                "ServerlessConfig": {
                    "MemorySizeInMB": int(memory_mb),
                    "MaxConcurrency": int(max_concurrency),
                },
            }
        ],
    }
