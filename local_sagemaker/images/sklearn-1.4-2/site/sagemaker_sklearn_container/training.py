"""The image's training module (``SAGEMAKER_TRAINING_MODULE``): hand the job to the toolkit.

Like the image's module it does nothing itself: the sagemaker-training toolkit reads
``/opt/ml/input/config``, downloads ``sagemaker_submit_directory``, installs a
``requirements.txt``, maps hyperparameters to arguments, sets ``SM_*`` and writes the failure file.
"""

from __future__ import annotations

import logging

from sagemaker_training import entry_point, environment, runner

logger = logging.getLogger(__name__)


def train(training_environment: environment.Environment) -> None:
    logger.info("Invoking user training script.")
    entry_point.run(
        uri=training_environment.module_dir,
        user_entry_point=training_environment.user_entry_point,
        args=training_environment.to_cmd_args(),
        env_vars=training_environment.to_env_vars(),
        runner_type=runner.ProcessRunnerType,
    )


def main() -> None:
    train(environment.Environment())
