"""Run-wide settings shared by the API handlers, the job pool and the endpoint manager."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from local_sagemaker.protocol import ACCOUNT_ID


@dataclass
class Settings:
    region: str
    work_dir: Path                 # sandboxes of jobs and model servers live below it
    endpoint_url: str = ""         # the emulator's own URL; known once the server is bound
    workers: int = 4               # jobs that run at once
    keep_sandboxes: bool = False   # keep job sandboxes for debugging
    account_id: str = ACCOUNT_ID

    def arn(self, resource_type: str, name: str) -> str:
        """ARNs as SageMaker builds them: the resource name lower-cased."""
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:{resource_type}/{name.lower()}"
