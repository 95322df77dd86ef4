"""The SageMaker Python SDK v2 against a real `tabpilot serve` process: the getting-started
notebook's XGBoost steps (`Estimator(image_uri=image_uris.retrieve("xgboost", ...))`,
`.fit({"train", "validation"}, logs=False)`, `.deploy()`, `predict` with CSV, a
`HyperparameterTuner` of four jobs and its analytics' dataframe), where the
only change from AWS is the AWS_ENDPOINT_URL_* variables. The SDK lives in a venv of its
own (`make sagemaker-sdk`), since it pins packages older than tabpilot's."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from traininglib import binary_table, write_csv

ROOT = Path(__file__).resolve().parents[2]
SDK_ENV = "TABPILOT_TEST_SAGEMAKER_PYTHON"  # a python with sagemaker 2.x installed
KEY_ID, SECRET = "AKIDSDKTEST", "sdk-test-secret"
SCRIPT = r'''
import json, sys
import sagemaker
from sagemaker.deserializers import CSVDeserializer
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.serializers import CSVSerializer

session = sagemaker.Session()
image = sagemaker.image_uris.retrieve("xgboost", session.boto_region_name, "1.7-1")
estimator = Estimator(image_uri=image, role="arn:aws:iam::123456789012:role/notebook",
                      instance_count=1, instance_type="ml.m5.xlarge",
                      output_path="s3://bucket/output", sagemaker_session=session,
                      hyperparameters={"num_round": 20, "max_depth": 3, "eta": 0.3,
                                       "objective": "binary:logistic", "eval_metric": "auc",
                                       "nthread": 1})
estimator.fit({"train": TrainingInput("s3://bucket/train/", content_type="text/csv"),
               "validation": TrainingInput("s3://bucket/validation/", content_type="text/csv")},
              logs=False)
described = session.describe_training_job(estimator.latest_training_job.name)
predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                             serializer=CSVSerializer(), deserializer=CSVDeserializer())
rows = json.loads(sys.argv[1])
scores = predictor.predict(rows)
predictor.delete_endpoint()

from sagemaker.analytics import HyperparameterTuningJobAnalytics
from sagemaker.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter

tuner = HyperparameterTuner(estimator, "validation:auc",
                            {"max_depth": IntegerParameter(1, 5),
                             "eta": ContinuousParameter(0.05, 0.5)},
                            max_jobs=4, max_parallel_jobs=2, strategy="Bayesian")
tuner.fit({"train": TrainingInput("s3://bucket/train/", content_type="text/csv"),
           "validation": TrainingInput("s3://bucket/validation/", content_type="text/csv")})
tuner.wait()
frame = HyperparameterTuningJobAnalytics(tuner.latest_tuning_job.name,
                                         sagemaker_session=session).dataframe()
print("\nRESULT " + json.dumps({"model_data": estimator.model_data, "scores": scores,
                  "status": described["TrainingJobStatus"],
                  "best": tuner.best_training_job(),
                  "tuned": frame.sort_values("FinalObjectiveValue", ascending=False)[
                      ["TrainingJobName", "FinalObjectiveValue"]].values.tolist(),
                  "metrics": {m["MetricName"]: m["Value"]
                              for m in described["FinalMetricDataList"]}}), flush=True)
'''
CONFIG = """SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""


def _sdk_python() -> Path:
    given = os.environ.get(SDK_ENV)
    path = Path(given) if given else ROOT / ".venv-sagemaker" / "bin" / "python"
    if not path.is_file():
        pytest.fail(f"no SageMaker Python SDK venv at {path}: run `make sagemaker-sdk` (or set "
                    f"{SDK_ENV} to a python with sagemaker>=2.230,<3)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_estimator_fit_deploy_predict(tmp_path: Path) -> None:
    python = _sdk_python()
    s3 = tmp_path / "s3"
    write_csv(s3 / "bucket" / "train" / "train.csv", binary_table(300, 0))
    write_csv(s3 / "bucket" / "validation" / "validation.csv", binary_table(100, 1))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "tabpilot", "serve", "--port", str(port), "--s3-root", str(s3),
         "-w", str(tmp_path / "workspace"), "--aws-access-key-id", KEY_ID,
         "--aws-secret-access-key", SECRET],
        stdout=open(tmp_path / "serve.log", "wb"), stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        _wait_up(port, server, tmp_path / "serve.log")
        (tmp_path / "config.yaml").write_text(CONFIG)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET,
                   AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL_SAGEMAKER=url,
                   AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=url, AWS_ENDPOINT_URL_STS=url,
                   SAGEMAKER_USER_CONFIG_OVERRIDE=str(tmp_path / "config.yaml"),
                   SAGEMAKER_SUPPRESS_V2_WARNING="1")
        rows = binary_table(8, 5)[:, 1:].round(4).tolist()
        done = subprocess.run([str(python), "-c", SCRIPT, json.dumps(rows)], env=env,
                              capture_output=True, text=True, timeout=480, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        assert line is not None, done.stdout[-2000:] + done.stderr[-2000:]
        result = json.loads(line.removeprefix("RESULT "))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert result["status"] == "Completed"
    assert result["metrics"]["validation:auc"] > 0.85
    local = s3 / result["model_data"].removeprefix("s3://")
    with tarfile.open(local) as tar:
        raw = tar.extractfile("xgboost-model").read()
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    expected = booster.predict(xgb.DMatrix(np.array(rows)))
    scores = np.array([float(row[0]) for row in result["scores"]])
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert len(result["tuned"]) == 4  # HyperparameterTuner + its analytics
    assert result["best"] == result["tuned"][0][0]


def _wait_up(port: int, server: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    import urllib.request

    until = time.time() + seconds
    while time.time() < until:
        if server.poll() is not None:
            raise AssertionError(f"tabpilot serve exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"tabpilot serve did not answer /ping: {log.read_text()[-2000:]}")
