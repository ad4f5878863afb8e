"""Job execution for the local SageMaker emulator: the control plane calls these.

``run_training_job`` / ``run_processing_job`` take the validated Create request and a
``JobContext``, block until the job ends and return a ``JobResult``; script failures come back
as ``Failed`` with SageMaker-worded reasons, never as exceptions. Each instance runs in the job
image's environment with its sandbox ``work_dir/<job>/instance-<i>/opt/ml`` mounted at a literal
``/opt/ml`` (``container.py``); training starts the image's own ``train`` toolkit. Output lines go
to CloudWatch Logs (``/aws/sagemaker/{TrainingJobs,ProcessingJobs}``, stream
``<job>/algo-<i>-<epoch>``) through the emulator's endpoint.

Not emulated: Pipe/FastFile input modes, checkpoints, heterogeneous clusters, instance memory and
network limits, and Continuous output uploads (done at the end). Multi-instance training uploads
algo-1's model directory.
"""

from .context import JobContext, JobResult
from .processing import run_processing_job
from .training import run_training_job

__all__ = ["JobContext", "JobResult", "run_processing_job", "run_training_job"]
