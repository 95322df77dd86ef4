"""The SageMaker Python SDK v2's Experiments against a real `tabpilot serve` process: three
`Run`s logging a parameter and metrics (`run.log_parameter`, `run.log_metric` through the
metrics service at AWS_ENDPOINT_URL_SAGEMAKER_METRICS), `ExperimentAnalytics(...).dataframe()`
over them, `list_runs`, and an `Estimator.fit` inside a run, whose training job's trial
component joins the run's experiment. The SDK lives in its own venv (`make sagemaker-sdk`)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from traininglib import binary_table, write_csv

ROOT = Path(__file__).resolve().parents[2]
SDK_ENV = "TABPILOT_TEST_SAGEMAKER_PYTHON"  # a python with sagemaker 2.x installed
KEY_ID, SECRET = "AKIDSDKEXPERIMENTS", "sdk-experiments-secret"
SCRIPT = r'''
import json
import sagemaker
from sagemaker.analytics import ExperimentAnalytics
from sagemaker.estimator import Estimator
from sagemaker.experiments import list_runs
from sagemaker.experiments.run import Run
from sagemaker.inputs import TrainingInput

session = sagemaker.Session()
for depth, losses in ((2, [0.9, 0.7, 0.6]), (4, [0.8, 0.5, 0.4]), (6, [0.85, 0.6, 0.55])):
    with Run(experiment_name="churn-trials", run_name=f"depth-{depth}",
             sagemaker_session=session) as run:
        run.log_parameter("max_depth", depth)
        run.log_parameter("booster", "gbtree")
        for step, loss in enumerate(losses):
            run.log_metric("train:loss", loss, step=step)
        run.log_metric("validation:auc", 0.7 + depth / 100)
frame = ExperimentAnalytics(experiment_name="churn-trials", sagemaker_session=session).dataframe()
listed = sorted(r.run_name for r in list_runs(experiment_name="churn-trials",
                                              sagemaker_session=session))

image = sagemaker.image_uris.retrieve("xgboost", session.boto_region_name, "1.7-1")
estimator = Estimator(image_uri=image, role="arn:aws:iam::123456789012:role/notebook",
                      instance_count=1, instance_type="ml.m5.xlarge",
                      output_path="s3://bucket/output", sagemaker_session=session,
                      hyperparameters={"num_round": 8, "max_depth": 3, "eta": 0.3,
                                       "objective": "binary:logistic", "eval_metric": "auc",
                                       "nthread": 1})
with Run(experiment_name="churn-fit", run_name="xgb", sagemaker_session=session) as run:
    run.log_parameter("note", "fit inside a run")
    estimator.fit({"train": TrainingInput("s3://bucket/train/", content_type="text/csv"),
                   "validation": TrainingInput("s3://bucket/validation/",
                                               content_type="text/csv")}, logs=False)
job = estimator.latest_training_job.name
component = session.sagemaker_client.describe_trial_component(
    TrialComponentName=job + "-aws-training-job")
fit_frame = ExperimentAnalytics(experiment_name="churn-fit", sagemaker_session=session).dataframe()
print("\nRESULT " + json.dumps({
    "columns": list(frame.columns),
    "rows": frame.sort_values("TrialComponentName")[
        ["TrialComponentName", "max_depth", "booster", "train:loss - Last",
         "train:loss - Min", "train:loss - Count", "validation:auc - Last"]].values.tolist(),
    "trials": frame["Trials"].tolist(),
    "listed": listed,
    "job": job,
    "component": {"status": component["Status"]["PrimaryStatus"],
                  "parameters": {k: v.get("NumberValue", v.get("StringValue"))
                                 for k, v in component["Parameters"].items()},
                  "metrics": {m["MetricName"]: m["Last"] for m in component["Metrics"]},
                  "source": component["Source"]["SourceArn"]},
    "fit_rows": sorted(fit_frame["TrialComponentName"].tolist())}), flush=True)
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


@pytest.mark.slow
def test_runs_log_and_experiment_analytics_reads_them(tmp_path: Path) -> None:
    python = _sdk_python()
    s3 = tmp_path / "s3"
    write_csv(s3 / "bucket" / "train" / "train.csv", binary_table(200, 0))
    write_csv(s3 / "bucket" / "validation" / "validation.csv", binary_table(80, 1))
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
                   AWS_ENDPOINT_URL_SAGEMAKER_METRICS=url,
                   SAGEMAKER_USER_CONFIG_OVERRIDE=str(tmp_path / "config.yaml"),
                   SAGEMAKER_SUPPRESS_V2_WARNING="1")
        done = subprocess.run([str(python), "-c", SCRIPT], env=env, capture_output=True,
                              text=True, timeout=420, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        assert line is not None, done.stdout[-2000:] + done.stderr[-2000:]
        result = json.loads(line.removeprefix("RESULT "))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert result["rows"] == [
        ["churn-trials-depth-2", 2.0, "gbtree", 0.6, 0.6, 3, 0.72],
        ["churn-trials-depth-4", 4.0, "gbtree", 0.4, 0.4, 3, 0.74],
        ["churn-trials-depth-6", 6.0, "gbtree", 0.55, 0.55, 3, 0.76]]
    for column in ("TrialComponentName", "DisplayName", "max_depth", "train:loss - Avg",
                   "train:loss - StdDev", "validation:auc - Count", "Trials", "Experiments"):
        assert column in result["columns"]
    assert result["trials"] == [["Default-Run-Group-churn-trials"]] * 3
    assert result["listed"] == ["depth-2", "depth-4", "depth-6"]  # the SDK's list_runs
    job_component = result["job"] + "-aws-training-job"
    assert result["fit_rows"] == sorted(["churn-fit-xgb", job_component])
    component = result["component"]
    assert component["status"] == "Completed"
    assert component["parameters"]["max_depth"] == 3.0
    assert component["parameters"]["objective"] == "binary:logistic"
    assert component["metrics"]["validation:auc"] > 0.8
    assert component["source"].endswith(":training-job/" + result["job"].lower())
