"""SageMaker Runtime InvokeEndpoint (REST-JSON: POST /endpoints/<name>/invocations)."""

from __future__ import annotations

import re
from typing import Any

from local_sagemaker.endpoints import EndpointManager
from local_sagemaker.protocol import AwsError

INVOKE_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")


def invoke(endpoints: EndpointManager, name: str, body: bytes,
           headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run one invocation; returns (status, headers, body). Model failures become ModelError."""
    serving = _serving()
    try:
        out, out_type, variant = endpoints.invoke(
            name, body, headers.get("content-type") or "application/octet-stream",
            headers.get("accept"), headers.get("x-amzn-sagemaker-target-variant"))
    except serving.ThrottlingError as exc:  # serverless MaxConcurrency: boto3 retries this one
        raise AwsError("ThrottlingException", exc.message) from None
    except serving.ModelError as exc:
        raise AwsError("ModelError", f"{exc}. See the model server's output for details.",
                       status=424, OriginalStatusCode=exc.status, OriginalMessage=exc.message) from None
    return 200, [("Content-Type", out_type), ("x-Amzn-Invoked-Production-Variant", variant)], out


def _serving() -> Any:
    from local_sagemaker import serving  # imported late, like the endpoint manager does

    return serving
