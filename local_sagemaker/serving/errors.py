"""Errors the model server reports to the control plane."""

from __future__ import annotations


class ModelLoadError(Exception):
    """The model cannot be served; the message is the endpoint's FailureReason."""


class ModelError(Exception):
    """The model answered with an error: InvokeEndpoint maps it to SageMaker's ModelError."""

    def __init__(self, status: int, message: str) -> None:
        kind = "client" if 400 <= status < 500 else "server"
        # str(exc) is SageMaker's wording; .message is what the model itself said
        super().__init__(f'Received {kind} error ({status}) from primary with message "{message}"')
        self.status, self.message = status, message


class ThrottlingError(ModelError):
    """More concurrent invocations than the serverless MaxConcurrency.

    SageMaker answers these with ``ThrottlingException`` (not ModelError); boto3 retries it.
    """

    def __init__(self, max_concurrency: int | None) -> None:
        super().__init__(
            429,
            f"Too many concurrent requests: the endpoint's MaxConcurrency is {max_concurrency}",
        )
