"""Benchmark the local SageMaker emulator: per-job overhead and InvokeEndpoint latency.

Starts ``python -m local_sagemaker serve`` on a free port (temporary data dir), then measures:
- per-job overhead: wall time of a job seen by a client (CreateXxxJob until a tight Describe
  poll sees the terminal status) minus the user script's own run time, which the emulator reports
  at ``GET /_emulator/<processing-jobs|training-jobs>/<name>`` (``_emulator.script_seconds``);
  goal under 1 s;
- InvokeEndpoint latency for one single-row ``text/csv`` request, with 1 and 50 concurrent
  clients (separate processes, each with its own boto3 client), against the baseline of the same
  sklearn Pipeline's ``predict()`` called in-process; goal p99 under 20 ms at 1 client.

    python bench/bench_emulator.py            # 10 jobs of each kind, 1000 + 50x100 invocations
    python bench/bench_emulator.py --quick    # a tiny run (CI smoke)
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import multiprocessing
import statistics
import sys
import tarfile
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import joblib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local_sagemaker.launcher import EmulatorProcess  # noqa: E402

DATA = ROOT / "include" / "data" / "california_housing.csv.gz"
TARGET, CATEGORICAL = "median_house_value", "ocean_proximity"
ROLE = "arn:aws:iam::123456789012:role/bench"
# SageMaker's scikit-learn 1.4-2 image: jobs and models run in its environment.
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
JOB_SCRIPT = "import time\ntime.sleep(0.2)\nprint('done')\n"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# -- the model -----------------------------------------------------------------------------
def load_rows() -> tuple[np.ndarray, np.ndarray]:
    """The bundled California housing sample: numeric feature columns and the target."""
    with gzip.open(DATA, "rt") as handle:
        header = handle.readline().strip().split(",")
        keep = [i for i, c in enumerate(header) if c not in (TARGET, CATEGORICAL)]
        rows = [line.rstrip("\n").split(",") for line in handle]
    target = header.index(TARGET)
    x = np.array([[float(r[i]) if r[i] else np.nan for i in keep] for r in rows])
    y = np.array([float(r[target]) for r in rows])
    return x, y


def fit_model(x: np.ndarray, y: np.ndarray):
    """The pipeline's default model family (train.py: linear_regression) as one sklearn Pipeline."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LinearRegression()).fit(x, y)


def model_tarball(model) -> bytes:
    raw, buf = io.BytesIO(), io.BytesIO()
    joblib.dump(model, raw)
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = len(raw.getvalue())
        tar.addfile(info, io.BytesIO(raw.getvalue()))
    return buf.getvalue()


def baseline_latencies(model, row: np.ndarray, n: int) -> list[float]:
    """predict() of one row in-process, in ms: the floor the endpoint is compared with."""
    for _ in range(20):
        model.predict(row)
    out = []
    for _ in range(n):
        start = time.perf_counter()
        model.predict(row)
        out.append((time.perf_counter() - start) * 1000)
    return out


# -- jobs ----------------------------------------------------------------------------------
def run_job(emu: EmulatorProcess, kind: str, request: dict) -> tuple[float, float]:
    """(wall seconds seen by the client, script seconds reported by the emulator)."""
    sm = emu.client("sagemaker")
    label = "Processing" if kind == "processing" else "Training"
    name = request[f"{label}JobName"]
    describe = sm.describe_processing_job if kind == "processing" else sm.describe_training_job
    start = time.perf_counter()
    (sm.create_processing_job if kind == "processing" else sm.create_training_job)(**request)
    while True:
        status = describe(**{f"{label}JobName": name})[f"{label}JobStatus"]
        if status not in ("InProgress", "Stopping"):
            break
        time.sleep(0.005)
    wall = time.perf_counter() - start
    if status != "Completed":
        raise RuntimeError(f"{label} job {name} ended {status}")
    with urllib.request.urlopen(f"{emu.url}/_emulator/{kind}-jobs/{name}") as response:
        return wall, json.load(response)["_emulator"]["script_seconds"]


def job_requests(bucket: str, kind: str, n: int) -> list[dict]:
    requests = []
    for _ in range(n):
        name = f"bench-{kind[:4]}-{uuid.uuid4().hex[:8]}"
        if kind == "processing":
            requests.append({
                "ProcessingJobName": name, "RoleArn": ROLE,
                "AppSpecification": {"ImageUri": SKLEARN_IMAGE,
                                     "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/job.py"]},
                "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                          "VolumeSizeInGB": 1}},
                "ProcessingInputs": [{"InputName": "code", "S3Input": {
                    "S3Uri": f"s3://{bucket}/code/job.py", "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix", "S3InputMode": "File"}}]})
        else:
            requests.append({
                "TrainingJobName": name, "RoleArn": ROLE,
                "AlgorithmSpecification": {"TrainingImage": SKLEARN_IMAGE, "TrainingInputMode": "File"},
                "HyperParameters": {"sagemaker_program": "job.py",
                                    "sagemaker_submit_directory": f"s3://{bucket}/code/sourcedir.tar.gz"},
                "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/code/job.py"}}}],
                "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/out"},
                "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1},
                "StoppingCondition": {"MaxRuntimeInSeconds": 600}})
    return requests


# -- endpoint ------------------------------------------------------------------------------
# The image has no default model_fn; its default input_fn/predict_fn/output_fn do the rest.
INFERENCE_PY = ("import os\nimport joblib\n\n\ndef model_fn(model_dir):\n"
                "    return joblib.load(os.path.join(model_dir, 'model.joblib'))\n")
CONTENT_TYPE = "application/json"  # a list of rows: the image decodes one CSV row to 1-D


def deploy(emu: EmulatorProcess, bucket: str, model) -> str:
    sm, s3 = emu.client("sagemaker"), emu.client("s3")
    s3.put_object(Bucket=bucket, Key="model/model.tar.gz", Body=model_tarball(model))
    code = io.BytesIO()
    with tarfile.open(fileobj=code, mode="w:gz") as tar:
        info = tarfile.TarInfo("inference.py")
        info.size = len(INFERENCE_PY)
        tar.addfile(info, io.BytesIO(INFERENCE_PY.encode()))
    s3.put_object(Bucket=bucket, Key="model/sourcedir.tar.gz", Body=code.getvalue())
    name = f"bench-{uuid.uuid4().hex[:8]}"
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": SKLEARN_IMAGE, "ModelDataUrl": f"s3://{bucket}/model/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{bucket}/model/sourcedir.tar.gz"}})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})
    return name


def _client_worker(url: str, endpoint: str, body: str, n: int, barrier, results) -> None:
    import boto3
    from botocore.config import Config

    runtime = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test",
                           config=Config(retries={"max_attempts": 1}))
    for _ in range(3):  # warm the connection
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType=CONTENT_TYPE, Body=body)
    barrier.wait()
    latencies = []
    cpu_started = time.process_time()
    for _ in range(n):
        start = time.perf_counter()
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType=CONTENT_TYPE, Body=body)["Body"].read()
        latencies.append((time.perf_counter() - start) * 1000)
    results.put((latencies, time.process_time() - cpu_started))


def invoke_latencies(
    url: str, endpoint: str, body: str, clients: int, per_client: int
) -> tuple[list[float], float, float]:
    """Latencies in ms over all clients, the requests per second achieved, and the CPU time the
    clients themselves spent per request (ms): boto3 building, signing and parsing each call."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(clients + 1), ctx.Queue()
    procs = [ctx.Process(target=_client_worker, args=(url, endpoint, body, per_client, barrier, results))
             for _ in range(clients)]
    for proc in procs:
        proc.start()
    barrier.wait()
    start = time.perf_counter()
    answers = [results.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - start
    for proc in procs:
        proc.join()
    latencies = [value for values, _ in answers for value in values]
    client_cpu_ms = 1000 * sum(cpu for _, cpu in answers) / len(latencies)
    return latencies, len(latencies) / elapsed, client_cpu_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run")
    parser.add_argument("--jobs", type=int, default=10, help="jobs of each kind (default 10)")
    parser.add_argument("--invocations", type=int, default=1000, help="requests with 1 client")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--per-client", type=int, default=100, help="requests per concurrent client")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.invocations, args.per_client = 2, 50, 5

    x, y = load_rows()
    model = fit_model(x, y)
    row = x[:1]
    body = json.dumps(row.tolist())
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        emu = EmulatorProcess(Path(tmp))
        try:
            s3 = emu.client("s3")
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key="code/job.py", Body=JOB_SCRIPT.encode())
            source = io.BytesIO()
            with tarfile.open(fileobj=source, mode="w:gz") as tar:
                info = tarfile.TarInfo("job.py")
                info.size = len(JOB_SCRIPT)
                tar.addfile(info, io.BytesIO(JOB_SCRIPT.encode()))
            s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=source.getvalue())

            emu.client("sagemaker").list_training_jobs(MaxResults=1)  # load the client's model
            overheads = {}
            for kind in ("processing", "training"):
                runs = [run_job(emu, kind, request) for request in job_requests(bucket, kind, args.jobs)]
                overheads[kind] = {"wall_s": statistics.median(w for w, _ in runs),
                                   "script_s": statistics.median(s for _, s in runs),
                                   "overhead_s": statistics.median(w - s for w, s in runs),
                                   "overhead_max_s": max(w - s for w, s in runs)}

            endpoint = deploy(emu, bucket, model)
            single, _, _ = invoke_latencies(emu.url, endpoint, body, 1, args.invocations)
            many, throughput, client_cpu_ms = invoke_latencies(
                emu.url, endpoint, body, args.clients, args.per_client)
        finally:
            emu.stop()
    base = baseline_latencies(model, row, max(args.invocations, 200))

    figures = {
        "jobs": {"n_per_kind": args.jobs, **overheads},
        "invoke": {
            "baseline_predict_ms": {"p50": percentile(base, 50), "p99": percentile(base, 99)},
            "clients_1": {"n": len(single), "p50": percentile(single, 50), "p99": percentile(single, 99)},
            f"clients_{args.clients}": {"n": len(many), "p50": percentile(many, 50),
                                        "p99": percentile(many, 99), "requests_per_s": throughput,
                                        "client_cpu_ms_per_request": client_cpu_ms},
        },
    }
    b50, b99 = figures["invoke"]["baseline_predict_ms"].values()
    print(f"\nPer-job overhead (median over {args.jobs} jobs; goal < 1 s)")
    print(f"{'kind':<12}{'wall s':>10}{'script s':>10}{'overhead s':>12}{'max s':>8}")
    for kind, o in overheads.items():
        print(f"{kind:<12}{o['wall_s']:>10.3f}{o['script_s']:>10.3f}{o['overhead_s']:>12.3f}{o['overhead_max_s']:>8.3f}")
    print("\nInvokeEndpoint, one row as application/json (goal p99 < 20 ms); baseline = predict() in-process")
    print(f"{'clients':<22}{'n':>7}{'p50 ms':>9}{'p99 ms':>9}{'p50/base':>10}{'p99/base':>10}")
    print(f"{'baseline predict()':<22}{len(base):>7}{b50:>9.2f}{b99:>9.2f}{1:>10.1f}{1:>10.1f}")
    for label, stats in (("1", figures["invoke"]["clients_1"]),
                         (str(args.clients), figures["invoke"][f"clients_{args.clients}"])):
        print(f"{label:<22}{stats['n']:>7}{stats['p50']:>9.2f}{stats['p99']:>9.2f}"
              f"{stats['p50'] / b50:>10.1f}{stats['p99'] / b99:>10.1f}")
    print(f"\n{args.clients} clients: {throughput:.0f} requests/s on {multiprocessing.cpu_count()} CPUs "
          f"(clients, emulator and model server share them); the clients alone used "
          f"{client_cpu_ms:.2f} ms CPU per request")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
