"""The SageMaker Python SDK v2 running processing jobs against a real `tabpilot serve` and a
real S3 server (SeaweedFS's `weed mini`): `SKLearnProcessor(...).run(code=...)` uploads
its script to the session's default bucket and the server runs it, and
`DefaultModelMonitor.suggest_baseline` runs the analyzer image; the only change from AWS
is the AWS_ENDPOINT_URL_* variables. Needs the cluster extra (weed, s3fs) and the SDK's
venv (`make sagemaker-sdk`); `make test-cluster` has both."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "training"))
sys.path.insert(0, str(Path(__file__).parent.parent / "store"))
from sdkserve import run_sdk, serving  # noqa: E402

DEFAULT_BUCKET = "sagemaker-tabpilot-test"
# Session.default_bucket() asks STS for the account at sts.<region>.amazonaws.com itself
# (sagemaker.utils.sts_regional_endpoint), ignoring AWS_ENDPOINT_URL_STS; the SDK's config
# file names the bucket instead, and the SDK then never asks
CONFIG = f"""SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
      Session:
        DefaultS3Bucket: {DEFAULT_BUCKET}
"""
TABLE = "tenure,plan,charges\n12,basic,70.5\n3,pro,99.0\n40,basic,20.25\n7,pro,55.0\n"
CODE = '''
import argparse, csv, os
parser = argparse.ArgumentParser()
parser.add_argument("--min-tenure", type=int)
args = parser.parse_args()
rows = list(csv.DictReader(open("/opt/ml/processing/input/data/table.csv")))
kept = [r for r in rows if int(r["tenure"]) >= args.min_tenure]
with open("/opt/ml/processing/output/kept.csv", "w") as f:
    f.write("".join(r["tenure"] + "\\n" for r in kept))
print(f"kept {len(kept)} rows")
'''
SCRIPT = r'''
import json
import sagemaker
from sagemaker.model_monitor import DefaultModelMonitor
from sagemaker.model_monitor.dataset_format import DatasetFormat
from sagemaker.processing import ProcessingInput, ProcessingOutput
from sagemaker.sklearn.processing import SKLearnProcessor

session = sagemaker.Session()
role = "arn:aws:iam::000000000000:role/notebook"
processor = SKLearnProcessor(framework_version="1.2-1", role=role, instance_count=1,
                             instance_type="ml.m5.xlarge", sagemaker_session=session)
processor.run(code="preprocess.py",
              inputs=[ProcessingInput(source="s3://tabpilot/data/table.csv",
                                      destination="/opt/ml/processing/input/data")],
              outputs=[ProcessingOutput(source="/opt/ml/processing/output", output_name="kept")],
              arguments=["--min-tenure", "7"], wait=True, logs=False)
described = processor.latest_job.describe()

monitor = DefaultModelMonitor(role=role, instance_count=1, instance_type="ml.m5.xlarge",
                              sagemaker_session=session)
monitor.suggest_baseline(baseline_dataset="s3://tabpilot/data/table.csv",
                         dataset_format=DatasetFormat.csv(header=True),
                         output_s3_uri="s3://tabpilot/baseline", wait=True, logs=False)
statistics = monitor.baseline_statistics().body_dict
print("\nRESULT " + json.dumps({
    "status": described["ProcessingJobStatus"], "bucket": session.default_bucket(),
    "output": described["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"],
    "code": [i["S3Input"]["S3Uri"] for i in described["ProcessingInputs"]
             if i["InputName"] == "code"][0],
    "features": [f["name"] for f in statistics["features"]]}), flush=True)
'''


@pytest.mark.cluster
def test_sklearn_processor_and_suggest_baseline(tmp_path: Path) -> None:
    from seaweed import SeaweedS3, missing

    why = missing()
    if why:
        pytest.fail(f"this test needs a real S3 server: {why}")
    with SeaweedS3() as s3:
        fs = s3.filesystem()
        fs.pipe("tabpilot/data/table.csv", TABLE.encode())
        keys = s3.env()
        server_env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
                      **keys}
        (tmp_path / "preprocess.py").write_text(CODE)
        with serving(tmp_path, "--allow-root", "s3://tabpilot",
                     "--allow-root", f"s3://{DEFAULT_BUCKET}",
                     "--aws-access-key-id", keys["AWS_ACCESS_KEY_ID"],
                     "--aws-secret-access-key", keys["AWS_SECRET_ACCESS_KEY"],
                     env=server_env) as url:
            result = run_sdk(SCRIPT, url, tmp_path, config=CONFIG, env=keys)
        assert result["status"] == "Completed"
        assert result["bucket"] == DEFAULT_BUCKET
        assert result["code"].startswith(f"s3://{DEFAULT_BUCKET}/")  # uploaded by the SDK
        output = result["output"].removeprefix("s3://").rstrip("/")
        assert fs.cat(f"{output}/kept.csv").decode() == "12\n40\n7\n"
        assert result["features"] == ["tenure", "plan", "charges"]
        logs = list((tmp_path / "workspace" / "logs").glob("processing-*.log"))
        assert any("kept 3 rows" in p.read_text() for p in logs)
