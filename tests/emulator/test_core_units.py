"""Fast checks of the control plane's own logic: validation, persistence, restart recovery."""

from __future__ import annotations

import json

import pytest

from local_sagemaker.jobs import PROCESSING, TRAINING, JobManager
from local_sagemaker.protocol import AwsError, public_view, service_model, validate
from local_sagemaker.runner.reasons import INTERNAL_ERROR
from local_sagemaker.settings import Settings
from local_sagemaker.state import Store


def _validate(operation: str, params: dict) -> AwsError:
    with pytest.raises(AwsError) as caught:
        validate(service_model("sagemaker").operation_model(operation), params)
    assert caught.value.code == "ValidationException" and caught.value.status == 400
    return caught.value


def test_constraints_are_checked_with_aws_member_paths():
    error = _validate("CreateEndpointConfig", {
        "EndpointConfigName": "cfg",
        "ProductionVariants": [{"VariantName": "ok", "ModelName": "m",
                                "ServerlessConfig": {"MemorySizeInMB": 100, "MaxConcurrency": 1}}]})
    assert error.message == (
        "1 validation error detected: Value '100' at "
        "'productionVariants.1.member.serverlessConfig.memorySizeInMB' failed to satisfy "
        "constraint: Member must have value greater than or equal to 1024")


def test_java_style_patterns_are_enforced():
    # ModelPackageGroupDescription's pattern uses \p{...} classes Python's re cannot read.
    validate(service_model("sagemaker").operation_model("CreateModelPackageGroup"),
             {"ModelPackageGroupName": "g", "ModelPackageGroupDescription": "Modèle 1: R² ≥ 0.6"})
    error = _validate("CreateModelPackageGroup", {"ModelPackageGroupName": "g",
                                                  "ModelPackageGroupDescription": "tab\there"})
    assert "'modelPackageGroupDescription'" in error.message


def test_map_keys_values_and_entry_count_follow_the_map_shape():
    # CustomerMetadataProperties: keys 1-128 and values 1-256 characters of
    # [\p{L}\p{Z}\p{N}_.:/=+\-@], at most 50 entries
    base = {"ModelPackageGroupName": "g"}
    validate(service_model("sagemaker").operation_model("CreateModelPackage"),
             {**base, "CustomerMetadataProperties": {"verdict": "passed on 95 pct bounds: 3/3 ge 0.6"}})
    error = _validate("CreateModelPackage", {**base, "CustomerMetadataProperties": {
        "verdict": "passed on 95% bounds", "a|b": "x"}})
    assert error.message.startswith("2 validation errors detected")
    assert "'customerMetadataProperties.verdict.value'" in error.message
    assert "'customerMetadataProperties.a|b.key'" in error.message
    error = _validate("CreateModelPackage", {**base, "CustomerMetadataProperties": {
        f"k{i}": "v" for i in range(51)}})
    assert "Member must have length less than or equal to 50" in error.message


def test_java_surrogate_pair_ranges_are_enforced():
    # e.g. DatasetDefinition's Catalog: Java spells U+10000-U+10FFFF as \uD800\uDC00-\uDBFF\uDFFF
    from local_sagemaker.protocol import _compiled

    pattern = service_model("sagemaker").shape_for("Catalog").metadata["pattern"]
    compiled = _compiled(pattern)
    assert compiled is not None
    assert compiled.fullmatch("AwsDataCatalog \U0001F600") and not compiled.fullmatch("a\x01b")


def test_enum_values_are_enforced():
    error = _validate("CreateModelPackage", {"ModelPackageGroupName": "g", "ModelApprovalStatus": "approved"})
    assert error.message == (
        "1 validation error detected: Value 'approved' at 'modelApprovalStatus' failed to satisfy "
        "constraint: Member must satisfy enum value set: [Approved, Rejected, PendingManualApproval]")


def test_types_and_required_members_use_botocore_wording():
    error = _validate("DescribeTrainingJob", {})
    assert 'Missing required parameter in input: "TrainingJobName"' in error.message
    error = _validate("CreateModelPackageGroup", {"ModelPackageGroupName": 5})
    assert "Invalid type for parameter ModelPackageGroupName" in error.message


def test_public_view_hides_internal_keys_and_non_finite_numbers():
    record = {"A": 1, "_emulator": {"x": 1}, "Metrics": [{"Value": float("nan"), "_k": 2}]}
    assert public_view(record) == {"A": 1, "Metrics": [{"Value": None}]}


def test_store_persists_atomically_and_reloads(tmp_path):
    store = Store(tmp_path)
    store.insert("models", "m1", {"ModelName": "m1"})
    with store.edit("models", "m1") as record:
        record["Tag"] = "x"
    assert json.loads((tmp_path / "state.json").read_text())["tables"]["models"]["m1"]["Tag"] == "x"
    assert not list(tmp_path.glob("*.tmp"))
    assert Store(tmp_path).get("models", "m1") == {"ModelName": "m1", "Tag": "x"}
    with pytest.raises(ValueError, match="taken"):
        store.insert("models", "m1", {}, exists=lambda old: ValueError(f"{old['ModelName']} taken"))


def test_store_refuses_a_corrupt_state_file_with_its_path(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(RuntimeError, match=r"state\.json is not valid JSON"):
        Store(tmp_path)


def test_recover_fails_jobs_a_dead_emulator_was_running(tmp_path):
    store = Store(tmp_path)
    settings = Settings(region="us-east-1", work_dir=tmp_path / "work", workers=1)
    jobs = JobManager(settings, store)
    for kind, name, status in ((TRAINING, "t-running", "InProgress"), (PROCESSING, "p-stopping", "Stopping"),
                               (TRAINING, "t-done", "Completed")):
        record = jobs.new_record(kind, {kind.name_key: name, "ResourceConfig": {"InstanceCount": 1}})
        record[kind.status_key] = status
        store.insert(kind.table, name, record)
    jobs.recover()
    jobs.shutdown()
    reloaded = Store(tmp_path)
    running = reloaded.get("training_jobs", "t-running")
    assert running["TrainingJobStatus"] == "Failed"
    assert running["FailureReason"] == INTERNAL_ERROR  # SageMaker's wording: a retry may succeed
    assert running["_emulator"]["failed_by"] == "emulator restart"
    assert running["SecondaryStatusTransitions"][-1]["Status"] == "Failed"
    assert running["TrainingStartTime"] <= running["TrainingEndTime"]
    assert reloaded.get("processing_jobs", "p-stopping")["ProcessingJobStatus"] == "Failed"
    assert reloaded.get("training_jobs", "t-done")["TrainingJobStatus"] == "Completed"
