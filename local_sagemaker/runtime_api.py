"""SageMaker Runtime InvokeEndpoint (REST-JSON: POST /endpoints/<name>/invocations)."""

from __future__ import annotations

import re

from local_sagemaker.endpoints import EndpointManager
from local_sagemaker.protocol import AwsError
from local_sagemaker.serving import ModelError, ThrottlingError

INVOKE_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")


def invoke(endpoints: EndpointManager, name: str, body: bytes,
           headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run one invocation; returns (status, headers, body). Model failures become ModelError."""
    try:
        out, out_type, variant = endpoints.invoke(
            name, body, headers.get("content-type") or "application/octet-stream",
            headers.get("accept"), headers.get("x-amzn-sagemaker-target-variant"))
    except ThrottlingError as exc:  # serverless MaxConcurrency: boto3 retries this one
        raise AwsError("ThrottlingException", exc.message) from None
    except ModelError as exc:
        raise AwsError("ModelError", f"{exc}. See the model server's output for details.",
                       status=424, OriginalStatusCode=exc.status, OriginalMessage=exc.message) from None
    return 200, [("Content-Type", out_type), ("x-Amzn-Invoked-Production-Variant", variant)], out

