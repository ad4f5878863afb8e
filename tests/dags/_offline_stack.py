"""What every end-to-end module here sets up on a started emulator before it runs DAGs.

The DAGs run in this process (``dag.test()``), so the process environment itself must point
Airflow's aws_default connection and every AWS client at the emulator, as tools/run_offline.py
does for its worker processes. ``AlertQueue`` is how a test reads the alerts the DAGs publish:
an SQS queue subscribed to the alert topic, as a mailbox on the alert list would be.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sagemaker_mlops.settings import Settings, load_settings
from sagemaker_mlops.specs import PipelineSpec

from local_sagemaker.launcher import EmulatorClient
from tools.run_offline import aws_env, bootstrap_aws, ensure_pool


@contextmanager
def offline_stack(emulator: EmulatorClient, specs: list[PipelineSpec] | None = None,
                  extra_env: dict[str, str] | None = None) -> Iterator[Settings]:
    """Until the block ends: the environment points at ``emulator`` (plus ``extra_env``), the
    deploy pool exists, and the bucket, alert topic and ``specs``' sample data are there (None:
    every shipped spec, as bootstrap_aws takes it). Yields the settings read from that environment."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**aws_env(emulator.url), **(extra_env or {})}.items():
            patch.setenv(key, value)
        settings = load_settings(environ=os.environ)
        ensure_pool(dict(os.environ), settings)
        bootstrap_aws(emulator, settings, specs)
        yield settings


class AlertQueue:
    """An SQS queue subscribed to the alert topic (settings.topic_arn)."""

    def __init__(self, emulator: EmulatorClient, topic_arn: str) -> None:
        self.sqs = emulator.client("sqs")
        self.url = self.sqs.create_queue(QueueName="alerts")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        emulator.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)

    def drain(self) -> list[str]:
        """The text of every alert received since the last drain, deleted from the queue."""
        found = []
        while batch := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                                WaitTimeSeconds=1).get("Messages", []):
            for message in batch:
                found.append(json.loads(message["Body"])["Message"])
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return found
