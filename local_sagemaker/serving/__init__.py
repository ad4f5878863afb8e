"""Endpoint serving for the local SageMaker emulator: one ModelServer per production variant.

``ModelServer`` runs ``local_sagemaker.serving.worker`` processes that implement the SageMaker
scikit-learn serving contract; ``ModelLoadError`` explains why a model cannot come up,
``ModelError`` (and its ``ThrottlingError`` subclass) why an invocation failed.
"""

from .errors import ModelError, ModelLoadError, ThrottlingError
from .supervisor import ModelServer

__all__ = ["ModelError", "ModelLoadError", "ModelServer", "ThrottlingError"]
