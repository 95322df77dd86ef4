"""examples/sagemaker_sdk_walkthrough.ipynb, AWS's SageMaker Python SDK v2 code unchanged, runs
from top to bottom against a real `tabpilot serve` and a real S3 server (SeaweedFS's `weed
mini` on loopback ports): upload, an Estimator with the built-in XGBoost image and a Debugger
rule, an Experiment of three runs, a tuner of six jobs, deploy with data capture, predict,
a Model Monitor baseline, a one-time (NOW) monitoring schedule, clean-up. The code cells run
as one script in the SDK's venv (`make sagemaker-sdk`; `make test-cluster` builds it), with a
last line added here that reports the notebook's variables."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "store"))
from sdkserve import run_sdk, serving  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "sagemaker_sdk_walkthrough.ipynb"
BUCKET = "sagemaker-tabpilot-walkthrough"
# Session.default_bucket() asks STS at AWS's own address; the SDK's config file names the
# bucket instead (as in tests/processing/test_processing_sdk.py)
CONFIG = f"""SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
      Session:
        DefaultS3Bucket: {BUCKET}
"""
REPORT = r'''
from botocore.exceptions import ClientError

try:
    session.sagemaker_client.describe_endpoint(EndpointName=endpoint_name)
    endpoint_gone = False
except ClientError as error:
    endpoint_gone = "Could not find" in str(error) or "ValidationException" in str(error)
tuning_job = session.sagemaker_client.describe_hyper_parameter_tuning_job(
    HyperParameterTuningJobName=tuner.latest_tuning_job.name)
print("\nRESULT " + json.dumps({
    "training_status": training_status, "rule_statuses": rule_statuses,
    "runs": sorted(runs["TrialComponentName"]),
    "run_depths": sorted(float(d) for d in runs["max_depth"]),
    "tuning_rows": len(tuning),
    "tuning_statuses": sorted(tuning["TrainingJobStatus"]),
    "tuning_counters": tuning_job["TrainingJobStatusCounters"],
    "predictions": [float(p) for p in predictions], "test_rows": len(test_data),
    "endpoint": endpoint_name, "capture_uri": capture_uri, "captured": captured,
    "execution_status": execution_status, "endpoint_gone": endpoint_gone}), flush=True)
'''


def notebook_script() -> str:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return "import json\n" + "\n\n".join(code) + "\n" + REPORT


def test_notebook_is_stored_clean_and_uses_the_sdk_unchanged() -> None:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    source = "\n".join("".join(c["source"]) for c in code)
    assert "tabpilot" not in source and "endpoint_url" not in source  # AWS's code, unchanged
    for call in ('image_uris.retrieve("xgboost", region, "1.7-1")', "rule_configs.",
                 "Run(", "ExperimentAnalytics(", "max_jobs=6", "max_parallel_jobs=2",
                 "DataCaptureConfig(", "CSVSerializer()", "suggest_baseline(",
                 "create_monitoring_schedule(", "CronExpressionGenerator.now()",
                 "delete_monitoring_schedule()", "delete_endpoint("):
        assert call in source, call
    compile(notebook_script(), str(NOTEBOOK), "exec")


@pytest.mark.cluster
def test_walkthrough_notebook_runs_against_tabpilot_serve_and_seaweedfs(tmp_path: Path) -> None:
    from seaweed import SeaweedS3, missing

    why = missing()
    if why:
        pytest.fail(f"this test needs a real S3 server: {why}")
    with SeaweedS3() as s3:
        keys = s3.env()
        server_env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
                      **keys, "TABPILOT_MONITOR_POLL_SECONDS": "2"}
        with serving(tmp_path, "--allow-root", f"s3://{BUCKET}",
                     "--aws-access-key-id", keys["AWS_ACCESS_KEY_ID"],
                     "--aws-secret-access-key", keys["AWS_SECRET_ACCESS_KEY"],
                     env=server_env) as url:
            result = run_sdk(notebook_script(), url, tmp_path, timeout=900, config=CONFIG,
                             env=keys)
        fs = s3.filesystem()
        capture = result["capture_uri"].removeprefix("s3://") + "/" + result["endpoint"]
        captured = [p for p in fs.find(capture) if not p.endswith("/")]
    assert result["training_status"] == "Completed"
    assert set(result["rule_statuses"]) == {"LossNotDecreasing"}
    assert result["rule_statuses"]["LossNotDecreasing"] in ("NoIssuesFound", "IssuesFound")
    assert result["runs"] == [f"churn-xgboost-depth-max-depth-{d}" for d in (2, 4, 6)]
    assert result["run_depths"] == [2.0, 4.0, 6.0]
    assert result["tuning_rows"] == 6
    assert result["tuning_statuses"] == ["Completed"] * 6
    assert result["tuning_counters"]["Completed"] == 6
    predictions = result["predictions"]
    assert len(predictions) == result["test_rows"] > 0  # one per test customer
    assert all(0.0 <= p <= 1.0 for p in predictions)
    assert result["captured"] and captured  # the notebook saw them, and they are in S3
    assert result["execution_status"] in ("Completed", "CompletedWithViolations")
    assert result["endpoint_gone"]
