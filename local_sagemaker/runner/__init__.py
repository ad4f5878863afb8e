"""Job execution for the local SageMaker emulator: the control plane calls these.

``run_training_job`` / ``run_processing_job`` take the validated Create request and a
``JobContext``, block until the job ends and return a ``JobResult``; script failures come back
as ``Failed`` with SageMaker-worded reasons, never as exceptions. Per job and instance the
sandbox ``work_dir/<job>/instance-<i>/opt/ml`` stands in for the container's /opt/ml
(``OPT_ML_DIR`` points at it and ``/opt/ml`` in commands is rewritten); output lines go to
CloudWatch Logs (``/aws/sagemaker/{TrainingJobs,ProcessingJobs}``, stream
``<job>/algo-<i>-<epoch>``) through the emulator's endpoint.

Not emulated: container images (training runs script mode or ContainerEntrypoint, processing
runs ContainerEntrypoint, both with the emulator's Python), Pipe/FastFile input modes,
requirements.txt installation, checkpoints, and Continuous output uploads (done at the end).
Multi-instance training uploads algo-1's model directory.
"""

from .context import JobContext, JobResult
from .processing import run_processing_job
from .training import run_training_job

__all__ = ["JobContext", "JobResult", "run_processing_job", "run_training_job"]
