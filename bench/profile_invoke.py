"""Where a single-row InvokeEndpoint's latency goes, layer by layer (run when its goal is missed).

One client, one endpoint of the emulator (the same model and row as bench/bench_emulator.py),
the same request measured through fewer and fewer layers:
1. boto3 ``invoke_endpoint`` (SigV4 signing, botocore's request/response machinery, HTTP);
2. a raw keep-alive HTTP POST to the emulator's ``/endpoints/<name>/invocations`` (the emulator's
   dispatch plus its hop to the endpoint's model server);
3. the image's serving stack called in-process in the image environment (Flask's test client on
   ``sagemaker_sklearn_container.serving:main``: decode the JSON rows, predict, encode JSON);
4. ``predict()`` alone, in the image environment.
The differences between consecutive layers are what each one adds.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import joblib
import numpy as np

from bench import bench_emulator
from local_sagemaker import images
from local_sagemaker.launcher import EmulatorProcess

JSON = "application/json"
ADDED_BY = {  # what a layer adds over the next one
    "boto3 invoke_endpoint": "boto3 client",
    "raw HTTP to the emulator": "emulator + model-server HTTP hops",
    "image serving stack in-process": "Flask app + JSON decode/encode",
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
    body = json.dumps(row.tolist())
    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-invoke-") as tmp:
        emu = EmulatorProcess(Path(tmp) / "emulator")
        try:
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            emu.client("s3").create_bucket(Bucket=bucket)
            endpoint = bench_emulator.deploy(emu, bucket, model)
            runtime = emu.client("sagemaker-runtime")
            out["boto3 invoke_endpoint"] = latencies_ms(
                lambda: runtime.invoke_endpoint(EndpointName=endpoint, ContentType=JSON,
                                                Accept=JSON, Body=body)["Body"].read(), n)
            url = urlparse(emu.url)
            connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)

            def raw() -> None:
                connection.request("POST", f"/endpoints/{endpoint}/invocations", body=body,
                                   headers={"Content-Type": JSON, "Accept": JSON})
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    raise RuntimeError(f"raw InvokeEndpoint answered {response.status}: {answer[:300]!r}")

            out["raw HTTP to the emulator"] = latencies_ms(raw, n)
            connection.close()
        finally:
            emu.stop()
        out.update(_in_image(Path(tmp), model, body, n))
    return out


IN_IMAGE_PY = """
import json, os, sys, time
import joblib, numpy as np
base, code, body, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
os.environ.update(SAGEMAKER_BASE_DIR=base, SAGEMAKER_PROGRAM="inference.py")
sys.path.insert(0, code)
from werkzeug.test import Client
from werkzeug.wrappers import Response
from sagemaker_sklearn_container import serving

def timed(call):
    for _ in range(20):
        call()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out

client = Client(serving.main, Response)
headers = {"Content-Type": "application/json", "Accept": "application/json"}
model = joblib.load(os.path.join(base, "model", "model.joblib"))
row = np.array(json.loads(body))
print(json.dumps({"stack": timed(lambda: client.post("/invocations", data=body, headers=headers)),
                  "predict": timed(lambda: model.predict(row))}))
"""


def _in_image(tmp: Path, model, body: str, n: int) -> dict[str, list[float]]:
    """Layers 3 and 4, timed by the image environment's Python (the endpoint's own packages)."""
    (tmp / "opt_ml" / "model").mkdir(parents=True)
    (tmp / "code").mkdir()
    joblib.dump(model, tmp / "opt_ml" / "model" / "model.joblib")
    (tmp / "code" / "inference.py").write_text(bench_emulator.INFERENCE_PY)
    python = images.resolve(bench_emulator.SKLEARN_IMAGE).python
    done = subprocess.run([str(python), "-W", "ignore", "-c", IN_IMAGE_PY, str(tmp / "opt_ml"),
                           str(tmp / "code"), body, str(n)], capture_output=True, text=True, check=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return {"image serving stack in-process": measured["stack"],
            "predict() in-process": measured["predict"]}


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
