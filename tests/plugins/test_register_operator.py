from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowException
from sagemaker_mlops.register_operator import data_fingerprint


def test_data_fingerprint_is_the_recorded_input_hash():
    assert data_fingerprint({"input_sha256": "a" * 64, "inputs": []}) == "a" * 64


@pytest.mark.parametrize("profile", [{}, {"input_sha256": ""}, {"inputs": [{"sha256": "b" * 64}]}])
def test_data_fingerprint_needs_the_input_hash(profile):
    with pytest.raises(AirflowException, match="profile.json has no input_sha256"):
        data_fingerprint(profile)
