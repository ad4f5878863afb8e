"""SageMaker control-plane operations, dispatched by their X-Amz-Target name."""

from __future__ import annotations

from typing import Any

from local_sagemaker.api import hosting, jobs, registry  # noqa: F401  (they register operations)
from local_sagemaker.api.base import OPERATIONS, Context
from local_sagemaker.protocol import AwsError, service_model, validate

__all__ = ["Context", "dispatch", "OPERATIONS"]


def dispatch(ctx: Context, operation_name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate against botocore's SageMaker model, then run the operation's handler."""
    handler = OPERATIONS.get(operation_name)
    if handler is None:
        model = service_model("sagemaker")
        if operation_name not in model.operation_names:
            raise AwsError("UnknownOperationException", f"Unknown operation {operation_name}")
        raise AwsError("NotImplementedError", f"{operation_name} is a SageMaker operation the "
                                              "local emulator does not implement", status=501)
    validate(service_model("sagemaker").operation_model(operation_name), params)
    return handler(ctx, params)
