"""A local, offline SageMaker: one loopback HTTP endpoint for boto3 and the Airflow provider.

Start it with ``python -m local_sagemaker serve``; see local_sagemaker/README.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Emulator"]


def __getattr__(name: str) -> Any:  # keep `import local_sagemaker.runner` free of server imports
    if name == "Emulator":
        from local_sagemaker.server import Emulator

        return Emulator
    raise AttributeError(name)
