"""Job execution for the local SageMaker emulator (the control plane calls these).

``run_training_job`` / ``run_processing_job`` block until the job ends and return a
``JobResult``; script failures come back as ``Failed``, never as exceptions.
"""

from .context import JobContext, JobResult
from .processing import run_processing_job
from .training import run_training_job

__all__ = ["JobContext", "JobResult", "run_processing_job", "run_training_job"]
