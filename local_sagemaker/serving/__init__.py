"""Endpoint serving for the local SageMaker emulator: one ModelServer per production variant.

Each container runs the image's own serving stack (for the scikit-learn 1.4-2 image:
sagemaker-containers' gunicorn + gevent server on ``sagemaker_sklearn_container.serving:main``)
with the image environment's Python, in a sandbox with a literal ``/opt/ml``
(``serve_container.py``; see ``container.py`` for what the platform does around it). Handler
resolution, content types and the status of a failed request are therefore the image's: a
handler that raises is answered with HTTP 500 (Flask's error page), which InvokeEndpoint reports
as ``ModelError``; only a response *returned* with a 4xx status is a 4xx.

A model that cannot start raises ``ModelLoadError`` (the endpoint's FailureReason, with the root
cause from the container's output). More in-flight requests than ``max_concurrency`` (serverless
MaxConcurrency) raise ``ThrottlingError``, which SageMaker reports as ThrottlingException.
``memory_mb`` is recorded, not enforced.
"""

from .errors import ModelError, ModelLoadError, ThrottlingError
from .supervisor import ModelServer

__all__ = ["ModelError", "ModelLoadError", "ModelServer", "ThrottlingError"]
