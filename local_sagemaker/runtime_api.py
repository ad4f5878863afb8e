"""SageMaker Runtime InvokeEndpoint (REST-JSON: POST /endpoints/<name>/invocations)."""

from __future__ import annotations

import re

from local_sagemaker.endpoints import EndpointManager
from local_sagemaker.protocol import AwsError
from local_sagemaker.serving import ModelError, ThrottlingError
from local_sagemaker.settings import Settings

INVOKE_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")


def invoke(endpoints: EndpointManager, name: str, body: bytes,
           headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run one invocation; returns (status, headers, body).

    A container's non-200 answer is SageMaker's ``ModelError`` (HTTP 424) carrying the container's
    own status and body as ``OriginalStatusCode`` / ``OriginalMessage``, and pointing at the
    endpoint's log group, as SageMaker words it.
    """
    try:
        out, out_type, variant = endpoints.invoke(
            name, body, headers.get("content-type") or "application/octet-stream",
            headers.get("accept"), headers.get("x-amzn-sagemaker-target-variant"))
    except ThrottlingError as exc:  # serverless MaxConcurrency: boto3 retries this one
        raise AwsError("ThrottlingException", exc.message) from None
    except ModelError as exc:
        settings = endpoints.settings
        region = settings.region
        logs = (f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
                f"#logEventViewer:group=/aws/sagemaker/Endpoints/{name}")
        raise AwsError("ModelError", f"{exc}. See {logs} in account {settings.account_id} for more "
                       "information.", status=424, OriginalStatusCode=exc.status,
                       OriginalMessage=exc.message, LogStreamArn=_log_group_arn(settings, name)
                       ) from None
    return 200, [("Content-Type", out_type), ("x-Amzn-Invoked-Production-Variant", variant)], out


def _log_group_arn(settings: Settings, name: str) -> str:
    return (f"arn:aws:logs:{settings.region}:{settings.account_id}:log-group:"
            f"/aws/sagemaker/Endpoints/{name}")
