"""NotificationMirror: moto's SNS topics, subscriptions and SQS queues kept on disk, and back at
start (in-process moto), and an emulator killed and restarted still has its alert topic."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from local_sagemaker.launcher import EmulatorProcess
from local_sagemaker.notification_snapshot import FILE_NAME, NotificationMirror

REGION = "eu-west-1"


def client(service: str, region: str = REGION):
    return boto3.client(service, region_name=region, aws_access_key_id="test",
                        aws_secret_access_key="test")


def build_alerting() -> tuple[str, str]:
    """An alert topic with a display name and tags, delivering raw to a queue with a filter."""
    queue_url = client("sqs").create_queue(QueueName="alerts", Attributes={"VisibilityTimeout": "45"},
                                           tags={"team": "ml"})["QueueUrl"]
    queue_arn = client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = client("sns").create_topic(Name="mlops-alerts", Attributes={"DisplayName": "MLOps"},
                                       Tags=[{"Key": "team", "Value": "ml"}])["TopicArn"]
    client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                            Attributes={"RawMessageDelivery": "true",
                                        "FilterPolicy": json.dumps({"kind": ["retrain"]})})
    return topic, queue_url


def test_sync_writes_only_when_topics_subscriptions_or_queues_change(tmp_path):
    with mock_aws():
        mirror = NotificationMirror(tmp_path)
        mirror.load(client)
        assert not (tmp_path / FILE_NAME).exists()  # nothing to keep yet
        topic, _ = build_alerting()
        mirror.sync()
        saved = json.loads((tmp_path / FILE_NAME).read_text())
        assert [t["name"] for t in saved["topics"]] == ["mlops-alerts"]
        assert [q["name"] for q in saved["queues"]] == ["alerts"]
        assert saved["subscriptions"][0]["attributes"]["RawMessageDelivery"] == "true"

        before = (tmp_path / FILE_NAME).stat().st_mtime_ns
        client("sns").publish(TopicArn=topic, Message="m", MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "retrain"}})
        mirror.sync()  # a message is not kept state: the file is not rewritten
        assert (tmp_path / FILE_NAME).stat().st_mtime_ns == before

        client("sns").delete_topic(TopicArn=topic)
        mirror.sync()
        assert json.loads((tmp_path / FILE_NAME).read_text())["topics"] == []


def test_load_recreates_topics_subscriptions_and_queues_that_deliver_again(tmp_path):
    with mock_aws():
        mirror = NotificationMirror(tmp_path)
        mirror.load(client)
        build_alerting()
        mirror.sync()
    with mock_aws():  # a new process: moto starts empty
        restored = NotificationMirror(tmp_path).load(client)
        assert restored == {"queues": 1, "topics": 1, "subscriptions": 1}
        sns, sqs = client("sns"), client("sqs")
        topic = sns.list_topics()["Topics"][0]["TopicArn"]
        assert topic.endswith(":mlops-alerts")
        assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["DisplayName"] == "MLOps"
        assert sns.list_tags_for_resource(ResourceArn=topic)["Tags"] == [{"Key": "team", "Value": "ml"}]
        queue_url = sqs.get_queue_url(QueueName="alerts")["QueueUrl"]
        assert sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])[
            "Attributes"]["VisibilityTimeout"] == "45"

        sns.publish(TopicArn=topic, Message="filtered out")
        sns.publish(TopicArn=topic, Message="retrain now", MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "retrain"}})
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
        assert [m["Body"] for m in messages] == ["retrain now"]  # raw delivery, filter kept


@pytest.mark.slow
def test_an_emulator_killed_and_restarted_keeps_its_alert_topic(tmp_path):
    first = EmulatorProcess(tmp_path, "--region", REGION)
    try:
        topic = first.client("sns").create_topic(Name="mlops-alerts")["TopicArn"]
        first.process.kill()  # SIGKILL: no shutdown hook runs
        first.process.wait()
    finally:
        if first.process.poll() is None:
            first.stop()
    second = EmulatorProcess(tmp_path, "--region", REGION)
    try:
        sns = second.client("sns")
        assert [t["TopicArn"] for t in sns.list_topics()["Topics"]] == [topic]
        assert sns.publish(TopicArn=topic, Message="after the restart")["MessageId"]
    finally:
        assert second.stop() == 0, second.log()[-3000:]


def test_a_topic_created_while_the_saved_state_is_restored_is_kept(tmp_path):
    with mock_aws():
        mirror = NotificationMirror(tmp_path)
        client("sns").create_topic(Name="created-during-load")  # the server answers during load
        mirror.load(client)
        saved = json.loads((tmp_path / FILE_NAME).read_text())
        assert [t["name"] for t in saved["topics"]] == ["created-during-load"]
