"""S3Mirror: moto's S3 on disk after every write, and back into moto at start (in-process moto)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from local_sagemaker.s3_snapshot import PARTIAL, S3Mirror


@pytest.fixture
def s3():
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


def files(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_sync_writes_changes_and_removes_deletions(s3, tmp_path):
    mirror = S3Mirror(tmp_path / "s3")
    mirror.load(s3, "us-east-1")
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="runs/1/train.csv", Body=b"a\n1\n")
    s3.put_object(Bucket="data", Key="runs/1/test.csv", Body=b"a\n2\n")
    s3.create_bucket(Bucket="empty")
    mirror.sync()
    assert files(tmp_path / "s3") == {"data/runs/1/train.csv": b"a\n1\n", "data/runs/1/test.csv": b"a\n2\n"}
    assert (tmp_path / "s3" / "empty").is_dir()  # an empty bucket survives too

    s3.put_object(Bucket="data", Key="runs/1/train.csv", Body=b"a\n3\n")  # overwritten
    s3.delete_object(Bucket="data", Key="runs/1/test.csv")
    s3.delete_bucket(Bucket="empty")
    mirror.sync()
    assert files(tmp_path / "s3") == {"data/runs/1/train.csv": b"a\n3\n"}
    assert not (tmp_path / "s3" / "empty").exists()
    assert not (tmp_path / "s3" / PARTIAL).exists() or not any((tmp_path / "s3" / PARTIAL).iterdir())


def test_versioned_delete_marker_and_unmappable_keys_are_not_files(s3, tmp_path):
    mirror = S3Mirror(tmp_path / "s3")
    mirror.load(s3, "us-east-1")
    s3.create_bucket(Bucket="versions")
    s3.put_bucket_versioning(Bucket="versions", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="versions", Key="gone.txt", Body=b"x")
    s3.put_object(Bucket="versions", Key="../escape", Body=b"x")
    s3.put_object(Bucket="versions", Key="kept.txt", Body=b"k")
    mirror.sync()
    s3.delete_object(Bucket="versions", Key="gone.txt")  # leaves a delete marker as latest
    mirror.sync()
    assert files(tmp_path / "s3") == {"versions/kept.txt": b"k"}


def test_load_brings_back_what_a_previous_process_kept(tmp_path):
    root = tmp_path / "s3"
    (root / "data" / "runs").mkdir(parents=True)
    (root / "data" / "runs" / "model.tar.gz").write_bytes(b"model")
    (root / PARTIAL).mkdir()
    (root / PARTIAL / "half-written").write_bytes(b"half")  # a kill mid-write leaves this
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        assert S3Mirror(root).load(s3, "us-east-1") == 1
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["data"]
        assert s3.get_object(Bucket="data", Key="runs/model.tar.gz")["Body"].read() == b"model"
    assert not (root / PARTIAL).exists()
