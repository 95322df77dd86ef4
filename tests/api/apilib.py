"""Helpers for the API tests: a real `tabpilot serve` app (endpoints and the SageMaker API)
on a free loopback port, and a local S3 root holding a generated training table."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

os.environ["TABPILOT_API_STRICT"] = "1"  # a response the service model rejects fails the test
sys.path.insert(0, str(Path(__file__).parent.parent / "serving"))
from servinglib import ThreadServer  # noqa: E402

from tabpilot.api.app import install  # noqa: E402
from tabpilot.serving.app import ServerSettings, server_app  # noqa: E402

KEY_ID, SECRET = "AKIDTABPILOTTEST", "test-secret-key"
ROLE = "arn:aws:iam::123456789012:role/autopilot"


def churn(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "tenure": rng.integers(1, 72, n).astype(float),
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "charges": rng.normal(70, 20, n).round(2),
    })
    noisy = rng.random(n) < 0.1
    risk = (df["tenure"] < 20).to_numpy() | df["plan"].eq("basic").to_numpy()
    df["churn"] = np.where(risk ^ noisy, "yes", "no")
    return df


class Api:
    def __init__(self, server: ThreadServer, root: Path, workspace: Path) -> None:
        self.server, self.url, self.s3_root, self.workspace = server, server.url, root, workspace

    def client(self, service: str = "sagemaker", key: str = KEY_ID, secret: str = SECRET):
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            config=Config(retries={"max_attempts": 1}))


def start_api(tmp: Path, credentials: dict[str, str] | None, token: str | None = None
              ) -> tuple[ThreadServer, Path, Path]:
    root, workspace = tmp / "s3", tmp / "workspace"
    (root / "bucket" / "input").mkdir(parents=True)
    churn().to_csv(root / "bucket" / "input" / "train.csv", index=False)
    settings = ServerSettings(workspace=workspace, poll_seconds=0.2, token=token)
    app = server_app(settings)
    install(app, workspace, root, credentials, token)
    return ThreadServer(app).__enter__(), root, workspace


def job_request(name: str, seconds: int = 40, candidates: int | None = 4) -> dict:
    criteria = {"MaxAutoMLJobRuntimeInSeconds": seconds}
    if candidates:
        criteria["MaxCandidates"] = candidates
    return dict(
        AutoMLJobName=name,
        AutoMLJobInputDataConfig=[{
            "ChannelType": "training", "ContentType": "text/csv;header=present",
            "CompressionType": "None",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                            "S3Uri": "s3://bucket/input/"}}}],
        OutputDataConfig={"S3OutputPath": "s3://bucket/output"},
        AutoMLProblemTypeConfig={"TabularJobConfig": {
            "TargetAttributeName": "churn", "ProblemType": "BinaryClassification",
            "CompletionCriteria": criteria,
            "CandidateGenerationConfig": {"AlgorithmsConfig": [
                {"AutoMLAlgorithms": ["lightgbm", "linear-learner"]}]}}},
        AutoMLJobObjective={"MetricName": "F1"},
        RoleArn=ROLE,
    )
