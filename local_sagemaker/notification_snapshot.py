"""Carry moto's SNS topics and subscriptions, and the SQS queues they deliver to, across restarts.

moto keeps them in memory only, so an emulator restarted with the same ``--data-dir`` used to
answer every alert with ``NotFound: Topic does not exist`` until someone created the topic again
(docker-compose's seed runs once per ``up``); on AWS a topic outlives any outage. After each SNS
or SQS request, and before its answer leaves the emulator, :meth:`NotificationMirror.sync`
writes ``DIR/notifications.json`` when the set of topics, subscriptions or queues changed
(written to a temporary file and renamed, so a kill never leaves half of it); :meth:`load`
recreates them through the API at start.

Kept: each topic's name, region, settable attributes and tags; each subscription's topic,
protocol, endpoint and settable attributes; each queue's name, region, settable attributes and
tags. Not kept: messages (alerts already delivered, unread SQS messages) and subscription ARNs
(the restored subscriptions get new ones).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

FILE_NAME = "notifications.json"
SERVICES = frozenset({"sns", "sqs"})
# what CreateTopic / Subscribe / CreateQueue accept, under the names their APIs use
TOPIC_ATTRIBUTES = {"DisplayName": "display_name", "Policy": "policy",
                    "DeliveryPolicy": "delivery_policy", "KmsMasterKeyId": "kms_master_key_id"}
FIFO_TOPIC_ATTRIBUTES = {"FifoTopic": "fifo_topic",
                         "ContentBasedDeduplication": "content_based_deduplication"}
SUBSCRIPTION_ATTRIBUTES = ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope",
                           "RedrivePolicy", "DeliveryPolicy", "SubscriptionRoleArn")
QUEUE_ATTRIBUTES = ("DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "Policy",
                    "RedrivePolicy", "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout",
                    "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope",
                    "FifoThroughputLimit", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds",
                    "SqsManagedSseEnabled")

ClientFactory = Callable[[str, str], Any]  # (service, region) -> boto3 client


def _text(value: Any) -> str:
    """An attribute value as the API takes it: strings, JSON for documents, lower-case booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _backends(backends: Any) -> Iterator[tuple[str, Any]]:
    """(region, backend) of every account and region moto has created so far."""
    for account in list(backends.keys()):
        for region in list(backends[account].keys()):
            yield region, backends[account][region]


def current_state() -> dict[str, list[dict[str, Any]]]:
    """What moto holds now, in the file's format (sorted, so equal states compare equal)."""
    topics, subscriptions, queues = [], [], []
    for region, sns in _backends(sns_backends):
        for topic in list(sns.topics.values()):
            names = {**TOPIC_ATTRIBUTES, **(FIFO_TOPIC_ATTRIBUTES if topic.fifo_topic else {})}
            attributes = {k: _text(getattr(topic, v)) for k, v in names.items() if getattr(topic, v)}
            topics.append({"region": region, "name": topic.name, "attributes": attributes,
                           "tags": dict(topic._tags or {})})
        for subscription in list(sns.subscriptions.values()):
            attributes = {k: _text(v) for k, v in subscription.attributes.items()
                          if k in SUBSCRIPTION_ATTRIBUTES and v not in (None, "")}
            subscriptions.append({"region": region, "topic_arn": subscription.topic.arn,
                                  "protocol": subscription.protocol,
                                  "endpoint": subscription.endpoint, "attributes": attributes})
    for region, sqs in _backends(sqs_backends):
        for queue in list(sqs.queues.values()):
            attributes = {k: _text(v) for k, v in queue.attributes.items()
                          if k in QUEUE_ATTRIBUTES and v not in (None, "")}
            queues.append({"region": region, "name": queue.name, "attributes": attributes,
                           "tags": dict(queue.tags)})
    key = lambda item: json.dumps(item, sort_keys=True)  # noqa: E731 - a sort key
    return {"queues": sorted(queues, key=key), "topics": sorted(topics, key=key),
            "subscriptions": sorted(subscriptions, key=key)}


class NotificationMirror:
    """``root / notifications.json``: moto's topics, subscriptions and queues, kept current."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / FILE_NAME
        self._lock = threading.Lock()
        self._written: dict[str, Any] | None = None
        self._active = False  # off while load() recreates the saved state through the API

    def load(self, client: ClientFactory) -> dict[str, int]:
        """Recreate what a previous process kept (queues, then topics, then subscriptions), then
        start mirroring; returns how many of each were restored."""
        saved = json.loads(self.path.read_text()) if self.path.is_file() else {
            "queues": [], "topics": [], "subscriptions": []}
        for queue in saved.get("queues", []):
            client("sqs", queue["region"]).create_queue(
                QueueName=queue["name"], Attributes=queue["attributes"], tags=queue["tags"])
        for topic in saved.get("topics", []):
            tags = [{"Key": k, "Value": v} for k, v in topic["tags"].items()]
            client("sns", topic["region"]).create_topic(
                Name=topic["name"], Attributes=topic["attributes"], **({"Tags": tags} if tags else {}))
        for subscription in saved.get("subscriptions", []):
            client("sns", subscription["region"]).subscribe(
                TopicArn=subscription["topic_arn"], Protocol=subscription["protocol"],
                Endpoint=subscription["endpoint"], Attributes=subscription["attributes"],
                ReturnSubscriptionArn=True)
        with self._lock:
            self._written = saved
            self._active = True
        self.sync()  # what a client created while this ran (the server was already answering)
        return {kind: len(saved[kind]) for kind in ("queues", "topics", "subscriptions")}

    def sync(self) -> None:
        """Write the file when moto's topics, subscriptions or queues differ from it."""
        with self._lock:
            if not self._active:
                return
            state = current_state()
            if state == self._written:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_suffix(".partial")
            partial.write_text(json.dumps(state, indent=2, sort_keys=True))
            os.replace(partial, self.path)
            self._written = state
