"""Where a single-row InvokeEndpoint's latency goes, layer by layer (run when its goal is missed).

One client, one endpoint of the emulator (the same model and row as bench/bench_emulator.py),
the same request measured through fewer and fewer layers:
1. boto3 ``invoke_endpoint`` (SigV4 signing, botocore's request/response machinery, HTTP);
2. a raw keep-alive HTTP POST to the emulator's ``/endpoints/<name>/invocations`` (the emulator's
   dispatch plus its hop to the endpoint's model server);
3. the model server's serving handlers called in-process (decode the CSV, predict, encode JSON);
4. ``predict()`` alone.
The differences between consecutive layers are what each one adds.
"""

from __future__ import annotations

import http.client
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import joblib
import numpy as np

from bench import bench_emulator
from local_sagemaker.launcher import EmulatorProcess
from local_sagemaker.serving.handlers import Handlers

CSV, JSON = "text/csv", "application/json"
ADDED_BY = {  # what a layer adds over the next one
    "boto3 invoke_endpoint": "boto3 client",
    "raw HTTP to the emulator": "emulator + model-server HTTP hops",
    "serving handlers in-process": "CSV decode + JSON encode",
}


def latencies_ms(call: Callable[[], object], n: int, warm: int = 20) -> list[float]:
    for _ in range(warm):
        call()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def layers(n: int = 500) -> dict[str, list[float]]:
    """{layer: latencies in ms} for the four layers above."""
    x, y = bench_emulator.load_rows()
    model = bench_emulator.fit_model(x, y)
    row = x[:1]
    body = ",".join("" if np.isnan(v) else repr(float(v)) for v in row[0])
    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-invoke-") as tmp:
        emu = EmulatorProcess(Path(tmp) / "emulator")
        try:
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            emu.client("s3").create_bucket(Bucket=bucket)
            endpoint = bench_emulator.deploy(emu, bucket, model)
            runtime = emu.client("sagemaker-runtime")
            out["boto3 invoke_endpoint"] = latencies_ms(
                lambda: runtime.invoke_endpoint(EndpointName=endpoint, ContentType=CSV,
                                                Accept=JSON, Body=body)["Body"].read(), n)
            url = urlparse(emu.url)
            connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)

            def raw() -> None:
                connection.request("POST", f"/endpoints/{endpoint}/invocations", body=body,
                                   headers={"Content-Type": CSV, "Accept": JSON})
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    raise RuntimeError(f"raw InvokeEndpoint answered {response.status}: {answer[:300]!r}")

            out["raw HTTP to the emulator"] = latencies_ms(raw, n)
            connection.close()
        finally:
            emu.stop()
        model_dir = Path(tmp) / "model"
        model_dir.mkdir()
        joblib.dump(model, model_dir / "model.joblib")
        handlers = Handlers()
        handlers.load(str(model_dir))
        out["serving handlers in-process"] = latencies_ms(
            lambda: handlers.invoke(body.encode(), CSV, JSON), n)
    out["predict() in-process"] = latencies_ms(lambda: model.predict(row), n)
    return out


def describe(measured: dict[str, list[float]]) -> str:
    """One note line: p50 (p99) per layer and what each layer adds at the median."""
    p50 = {k: float(np.percentile(v, 50)) for k, v in measured.items()}
    p99 = {k: float(np.percentile(v, 99)) for k, v in measured.items()}
    names = list(measured)
    chain = " → ".join(f"{k} {p50[k]:.2f} ({p99[k]:.2f}) ms" for k in names)
    adds = ", ".join(f"{ADDED_BY[outer]} +{p50[outer] - p50[inner]:.2f} ms"
                     for outer, inner in zip(names, names[1:], strict=False))
    return (f"InvokeEndpoint, 1 client, by layer, p50 (p99): {chain}; each layer adds at the "
            f"median: {adds}")
