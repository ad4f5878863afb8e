"""Errors the model server reports to the control plane."""

from __future__ import annotations


class ModelLoadError(Exception):
    """The model cannot be served; the message is the endpoint's FailureReason."""


class ModelError(Exception):
    """A container answered an invocation with a status other than 200.

    ``str(exc)`` is SageMaker's wording (``Received server error (500) from primary with message
    "..."``); ``status`` and ``message`` are what the container itself sent (InvokeEndpoint's
    ``OriginalStatusCode`` and ``OriginalMessage``).
    """

    def __init__(self, status: int, message: str, container: str = "primary") -> None:
        kind = "client" if 400 <= status < 500 else "server"
        super().__init__(
            f'Received {kind} error ({status}) from {container} with message "{message}"'
        )
        self.status, self.message, self.container = status, message, container


class ThrottlingError(ModelError):
    """More concurrent invocations than the serverless MaxConcurrency.

    SageMaker answers these with ``ThrottlingException`` (not ModelError); boto3 retries it.
    """

    def __init__(self, max_concurrency: int | None) -> None:
        super().__init__(
            429,
            f"Too many concurrent requests: the endpoint's MaxConcurrency is {max_concurrency}",
        )
