"""S3 URI helpers shared by the runner, the model server and the control plane."""

from __future__ import annotations

import pytest

from local_sagemaker.s3util import S3UriError, join_s3_uri, parse_s3_uri, relative_key


def test_parse_and_join():
    assert parse_s3_uri("s3://bucket/a/b.csv") == ("bucket", "a/b.csv")
    assert parse_s3_uri("s3://bucket") == ("bucket", "")
    assert join_s3_uri("s3://bucket/out/", "job", "/output/") == "s3://bucket/out/job/output"


@pytest.mark.parametrize("uri", ["bucket/key", "s3://", "s3:///key", None])
def test_parse_rejects_non_s3_uris(uri):
    with pytest.raises(S3UriError):
        parse_s3_uri(uri)


@pytest.mark.parametrize(
    ("prefix", "key", "relative"),
    [
        ("data/train", "data/train/a.csv", "a.csv"),
        ("data/train/", "data/train/sub/a.csv", "sub/a.csv"),
        ("data/train/a.csv", "data/train/a.csv", "a.csv"),
        ("data/tr", "data/train/a.csv", "train/a.csv"),
        ("", "a/b.csv", "a/b.csv"),
        ("tr", "train/a.csv", "train/a.csv"),
    ],
)
def test_relative_key_mirrors_the_s3_prefix_layout(prefix, key, relative):
    assert relative_key(prefix, key) == relative
