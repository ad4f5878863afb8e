"""Endpoint serving for the local SageMaker emulator: one ModelServer per production variant.

Each container runs ``python -m local_sagemaker.serving.worker``, which implements the SageMaker
scikit-learn serving contract: ModelDataUrl is extracted into the model dir; the entry point
``SAGEMAKER_PROGRAM`` is imported from ``SAGEMAKER_SUBMIT_DIRECTORY`` (an s3:// tarball,
``/opt/ml/model/code`` inside the model tarball, or a local dir) with its directory on
``sys.path``; ``model_fn`` runs once; ``GET /ping`` and ``POST /invocations`` call
``input_fn`` -> ``predict_fn`` -> ``output_fn`` (or ``transform_fn``). Missing handlers fall back
to the container's defaults: joblib-load ``model.joblib``; decode/encode ``text/csv``,
``application/json``, ``application/x-npy``; default Accept ``application/json``
(``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``). ``SAGEMAKER_MODEL_SERVER_WORKERS`` processes
share the port (default 1).

Errors: a model that cannot load raises ``ModelLoadError`` (the endpoint's FailureReason,
e.g. ``model_fn failed: ...``). A failed invocation raises ``ModelError(status, message)``:
the ``status_code`` of an exception that carries one (the inference toolkit's convention),
415 for unsupported content types, 400 for ValueError/TypeError/KeyError/IndexError from
``input_fn``/``predict_fn`` (bad payloads), 500 for anything else; the message is one line,
the traceback goes to the server's log. More in-flight requests than ``max_concurrency``
(serverless MaxConcurrency) raise ``ThrottlingError`` (a ModelError with status 429), which
SageMaker reports as ThrottlingException. ``memory_mb`` is recorded, not enforced.
"""

from .errors import ModelError, ModelLoadError, ThrottlingError
from .supervisor import ModelServer

__all__ = ["ModelError", "ModelLoadError", "ModelServer", "ThrottlingError"]
