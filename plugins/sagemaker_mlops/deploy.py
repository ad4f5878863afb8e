"""Safe release to a serverless endpoint: verify what serves, smoke-test it, restore on failure.

"InService" alone does not mean the new model serves: a failed UpdateEndpoint returns the
endpoint to InService on the *previous* EndpointConfigName with a FailureReason (SageMaker's
silent rollback). So after the wait we compare the serving config with the one we asked for,
then invoke the endpoint with real test rows and compare with the evaluation's predictions.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

SMOKE_RELATIVE_TOLERANCE = 1e-3
SMOKE_ABSOLUTE_TOLERANCE = 1e-6
# statuses SageMaker moves out of by itself; UpdateEndpoint is refused in all of them
IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
# how SageMaker refuses a second change while one is in flight (another deployment's)
CONCURRENT_CHANGE_MESSAGES = ("Cannot update in-progress endpoint",)


class DeployError(RuntimeError):
    """The new model does not serve as evaluated; the message is the reason recorded."""


def _described(describe: Any, **kwargs: Any) -> dict[str, Any] | None:
    """A Describe* answer, or None for SageMaker's "not found" (a ValidationException)."""
    try:
        return describe(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ValidationException":
            return None
        raise


def describe_endpoint(client: Any, name: str) -> dict[str, Any] | None:
    return _described(client.describe_endpoint, EndpointName=name)


def served_package(client: Any, endpoint_config_name: str) -> str | None:
    """The model package (registry version) an endpoint config serves; None when its model was
    not created from the registry."""
    config = client.describe_endpoint_config(EndpointConfigName=endpoint_config_name)
    model = client.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    return (model.get("Containers") or [model.get("PrimaryContainer", {})])[0].get("ModelPackageName")


def wait_settled(
    client: Any, name: str, delay: float, max_attempts: int = 600
) -> dict[str, Any] | None:
    """The endpoint once it is no longer changing (None if it does not exist).

    A deploy task re-run after its worker died can meet the endpoint still Updating from the
    killed try; deciding anything before SageMaker finishes would restore or reject on a state
    that is about to change.
    """
    for _ in range(max_attempts):
        endpoint = describe_endpoint(client, name)
        if endpoint is None or endpoint.get("EndpointStatus") not in IN_PROGRESS:
            return endpoint
        time.sleep(delay)
    raise DeployError(f"endpoint {name} stayed {endpoint.get('EndpointStatus')} for "
                      f"{max_attempts} checks {delay:g} s apart")


def is_concurrent_change(exc: BaseException) -> bool:
    """Whether SageMaker refused our change because another one is in flight on the endpoint."""
    if not isinstance(exc, ClientError):
        return False
    message = exc.response.get("Error", {}).get("Message", "")
    return message.startswith(CONCURRENT_CHANGE_MESSAGES)


def exists(describe: Any, **kwargs: Any) -> bool:
    """Whether a SageMaker resource exists, asked through its Describe call."""
    return _described(describe, **kwargs) is not None


def verify_serving(endpoint: dict[str, Any] | None, requested_config: str) -> None:
    """Raise unless the endpoint is InService on the config we deployed."""
    if endpoint is None:
        raise DeployError("the endpoint does not exist after deployment")
    status = endpoint.get("EndpointStatus")
    serving = endpoint.get("EndpointConfigName")
    reason = endpoint.get("FailureReason") or "no FailureReason given"
    if status != "InService":
        raise DeployError(f"endpoint is {status}, not InService: {reason}")
    if serving != requested_config:
        raise DeployError(
            f"endpoint rolled back: it serves {serving}, not the new {requested_config} "
            f"({reason})"
        )


def sample_payload(sample: dict[str, Any]) -> tuple[bytes, list[Any]]:
    """CSV body (raw feature rows, no header) and expected predictions from evaluation.json."""
    rows = sample.get("rows") or []
    expected = sample.get("predictions") or []
    if not rows or len(rows) != len(expected):
        raise DeployError(
            "evaluation.json sample_predictions needs rows and one prediction per row, got "
            f"{len(rows)} rows and {len(expected)} predictions"
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue().encode(), list(expected)


def parse_predictions(body: bytes, content_type: str) -> list[Any]:
    """Predictions from an inference.py answer (JSON list / {"predictions": [...]} or CSV)."""
    text = body.decode("utf-8").strip()
    if "json" in (content_type or "") or text[:1] in "[{":
        data = json.loads(text)
        if isinstance(data, dict):
            data = data.get("predictions", data.get("prediction"))
        if not isinstance(data, list):
            raise DeployError(f"endpoint answered JSON without a predictions list: {text[:200]}")
        return [v[0] if isinstance(v, list) and len(v) == 1 else v for v in data]
    return [line.split(",")[0] for line in text.splitlines() if line.strip()]


def _same(actual: Any, expected: Any) -> bool:
    try:
        a, e = float(actual), float(expected)
    except (TypeError, ValueError):
        return str(actual) == str(expected)
    return math.isclose(a, e, rel_tol=SMOKE_RELATIVE_TOLERANCE, abs_tol=SMOKE_ABSOLUTE_TOLERANCE)


def compare_predictions(actual: Sequence[Any], expected: Sequence[Any]) -> None:
    if len(actual) != len(expected):
        raise DeployError(
            f"smoke check: endpoint returned {len(actual)} predictions for {len(expected)} rows"
        )
    for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
        if not _same(a, e):
            raise DeployError(
                f"smoke check: row {index} predicted {a!r} by the endpoint but {e!r} in "
                f"evaluation (relative tolerance {SMOKE_RELATIVE_TOLERANCE})"
            )


def smoke_check(runtime: Any, endpoint_name: str, sample: dict[str, Any]) -> list[Any]:
    """Invoke the endpoint with the evaluation's sample rows; raise DeployError on mismatch."""
    body, expected = sample_payload(sample)
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint_name, Body=body, ContentType="text/csv", Accept="application/json"
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise DeployError(
            f"smoke check: InvokeEndpoint failed: {error.get('Code')}: {error.get('Message')}"
        ) from exc
    actual = parse_predictions(response["Body"].read(), response.get("ContentType", ""))
    compare_predictions(actual, expected)
    return actual


def delete_and_wait(client: Any, endpoint_name: str, delay: float, max_attempts: int = 600) -> None:
    """DeleteEndpoint, then wait until it is gone (the only call a ``Failed`` endpoint accepts)."""
    client.delete_endpoint(EndpointName=endpoint_name)
    client.get_waiter("endpoint_deleted").wait(
        EndpointName=endpoint_name, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
    )


def restore(
    client: Any, endpoint_name: str, previous_config: str | None, delay: float, max_attempts: int = 600
) -> str:
    """Put the endpoint back on ``previous_config`` (or remove it if there was none).

    A ``Failed`` endpoint refuses UpdateEndpoint, so it is deleted and created again on
    ``previous_config``.
    """
    current = describe_endpoint(client, endpoint_name)
    if previous_config is None:
        if current is None:
            return "no endpoint existed before and none exists now"
        client.delete_endpoint(EndpointName=endpoint_name)
        return f"deleted endpoint {endpoint_name}, which did not exist before this deployment"
    if current is not None and current.get("EndpointStatus") == "Failed":
        delete_and_wait(client, endpoint_name, delay, max_attempts)
        current = None
    if current is None:
        client.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=previous_config)
        client.get_waiter("endpoint_in_service").wait(
            EndpointName=endpoint_name, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
        )
        return f"created endpoint {endpoint_name} again on {previous_config} (it was Failed or gone)"
    if (
        current is not None
        and current.get("EndpointConfigName") == previous_config
        and current.get("EndpointStatus") == "InService"
    ):
        return f"endpoint already serves the previous config {previous_config}"
    client.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=previous_config)
    client.get_waiter("endpoint_in_service").wait(
        EndpointName=endpoint_name, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
    )
    return f"restored endpoint {endpoint_name} to {previous_config}"
