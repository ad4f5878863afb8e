"""Models, endpoint configurations and endpoints."""

from __future__ import annotations

from typing import Any

from local_sagemaker import images
from local_sagemaker.api.base import Context, describe, list_page, operation, pick, require
from local_sagemaker.api.registry import find_package
from local_sagemaker.protocol import validation_error
from local_sagemaker.state import now


def _quoted_arn(ctx: Context, resource_type: str, name: str) -> str:
    return f"\"{ctx.settings.arn(resource_type, name)}\""


def _resolve_container(ctx: Context, container: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers a model runs: its own, or those of the model package it names."""
    package_name = container.get("ModelPackageName")
    if not package_name:
        return [pick(container, "Image", "ModelDataUrl", "Environment")]
    package = find_package(ctx, package_name)
    if package is None:
        raise validation_error(f"ModelPackage {package_name} does not exist.")
    resolved = []
    for spec in package.get("InferenceSpecification", {}).get("Containers", []):
        env = {**(spec.get("Environment") or {}), **(container.get("Environment") or {})}
        resolved.append({**pick(spec, "Image", "ModelDataUrl"), "Environment": env})
    if not resolved:
        raise validation_error(f"ModelPackage {package_name} has no inference containers.")
    return resolved


def _check_image(image: str | None) -> None:
    """CreateModel refuses an image it cannot pull (AWS: ``Requested image ... not found``); here
    that is an image the emulator has no environment for."""
    if not image:
        raise validation_error("A container without a ModelPackageName must specify an Image.")
    try:
        images.resolve(image)
    except images.UnsupportedImage as exc:
        raise validation_error(str(exc)) from None


# -- models ----------------------------------------------------------------------------------
@operation("CreateModel")
def create_model(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    name = params["ModelName"]
    containers = ([params["PrimaryContainer"]] if params.get("PrimaryContainer")
                  else params.get("Containers") or [])
    if not containers:
        raise validation_error("Either PrimaryContainer or Containers must be specified.")
    resolved = [c for container in containers for c in _resolve_container(ctx, container)]
    for container in resolved:
        _check_image(container.get("Image"))
    arn = ctx.settings.arn("model", name)
    record = {**params, "ModelArn": arn, "CreationTime": now(), "_containers": resolved}
    ctx.store.insert("models", name, record, exists=lambda _: validation_error(
        f"Cannot create already existing model {_quoted_arn(ctx, 'model', name)}."))
    return {"ModelArn": arn}


def _missing_model(ctx: Context, name: str) -> str:
    return f"Could not find model {_quoted_arn(ctx, 'model', name)}."


@operation("DescribeModel")
def describe_model(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    name = params["ModelName"]
    return describe(require(ctx, "models", name, _missing_model(ctx, name)))


@operation("DeleteModel")
def delete_model(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    name = params["ModelName"]
    if ctx.store.delete("models", name) is None:
        raise validation_error(_missing_model(ctx, name))
    return {}


@operation("ListModels")
def list_models(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return list_page(ctx.store.values("models"), params, result_key="Models", name_key="ModelName",
                     summary_keys=("ModelName", "ModelArn", "CreationTime"))


# -- endpoint configurations -------------------------------------------------------------------
def _missing_config(ctx: Context, name: str) -> str:
    return f"Could not find endpoint configuration {_quoted_arn(ctx, 'endpoint-config', name)}."


@operation("CreateEndpointConfig")
def create_endpoint_config(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    name = params["EndpointConfigName"]
    for variant in params["ProductionVariants"]:
        if ctx.store.get("models", variant["ModelName"]) is None:
            raise validation_error(_missing_model(ctx, variant["ModelName"]))
        if not variant.get("ServerlessConfig") and not variant.get("InstanceType"):
            raise validation_error(f"Production variant {variant['VariantName']} needs either an "
                                   "InstanceType or a ServerlessConfig.")
    arn = ctx.settings.arn("endpoint-config", name)
    record = {**params, "EndpointConfigArn": arn, "CreationTime": now()}
    ctx.store.insert("endpoint_configs", name, record, exists=lambda _: validation_error(
        f"Cannot create already existing endpoint configuration "
        f"{_quoted_arn(ctx, 'endpoint-config', name)}."))
    return {"EndpointConfigArn": arn}


@operation("DescribeEndpointConfig")
def describe_endpoint_config(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    name = params["EndpointConfigName"]
    return describe(require(ctx, "endpoint_configs", name, _missing_config(ctx, name)))


@operation("DeleteEndpointConfig")
def delete_endpoint_config(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    name = params["EndpointConfigName"]
    if ctx.store.delete("endpoint_configs", name) is None:
        raise validation_error(_missing_config(ctx, name))
    return {}


@operation("ListEndpointConfigs")
def list_endpoint_configs(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return list_page(ctx.store.values("endpoint_configs"), params, result_key="EndpointConfigs",
                     name_key="EndpointConfigName",
                     summary_keys=("EndpointConfigName", "EndpointConfigArn", "CreationTime"))


# -- endpoints -------------------------------------------------------------------------------
def _missing_endpoint(ctx: Context, name: str) -> str:
    return f"Could not find endpoint {_quoted_arn(ctx, 'endpoint', name)}."


@operation("CreateEndpoint")
def create_endpoint(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    name = params["EndpointName"]
    config_name = params["EndpointConfigName"]
    config = require(ctx, "endpoint_configs", config_name, _missing_config(ctx, config_name))
    arn = ctx.settings.arn("endpoint", name)
    created = now()
    record = {**params, "EndpointArn": arn, "EndpointStatus": "Creating",
              "CreationTime": created, "LastModifiedTime": created}
    ctx.store.insert("endpoints", name, record, exists=lambda _: validation_error(
        f"Cannot create already existing endpoint {_quoted_arn(ctx, 'endpoint', name)}."))
    ctx.endpoints.deploy(name, config)
    return {"EndpointArn": arn}


@operation("UpdateEndpoint")
def update_endpoint(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    name = params["EndpointName"]
    config_name = params["EndpointConfigName"]
    config = require(ctx, "endpoint_configs", config_name, _missing_config(ctx, config_name))
    with ctx.store.edit("endpoints", name) as record:
        if record is None:
            raise validation_error(_missing_endpoint(ctx, name))
        status = record["EndpointStatus"]
        if status != "InService":
            state = "in-progress" if status in ("Creating", "Updating", "SystemUpdating") else "failed"
            raise validation_error(
                f"Cannot update {state} endpoint {_quoted_arn(ctx, 'endpoint', name)}.")
        record.update(EndpointStatus="Updating", LastModifiedTime=now())
    ctx.endpoints.deploy(name, config)
    return {"EndpointArn": ctx.settings.arn("endpoint", name)}


@operation("DescribeEndpoint")
def describe_endpoint(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    name = params["EndpointName"]
    return describe(require(ctx, "endpoints", name, _missing_endpoint(ctx, name)))


@operation("DeleteEndpoint")
def delete_endpoint(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    name = params["EndpointName"]
    if ctx.store.delete("endpoints", name) is None:
        raise validation_error(_missing_endpoint(ctx, name))
    ctx.endpoints.remove(name)
    return {}


@operation("ListEndpoints")
def list_endpoints(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return list_page(ctx.store.values("endpoints"), params, result_key="Endpoints",
                     name_key="EndpointName", status_key="EndpointStatus",
                     summary_keys=("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime",
                                   "EndpointStatus"))
