"""Helpers for the training tests: label-first tables, a served app's clients and waits,
and a CreateTrainingJob request."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ["TABPILOT_API_STRICT"] = "1"  # a response the service model rejects fails the test
sys.path.insert(0, str(Path(__file__).parent.parent / "serving"))
from servinglib import ThreadServer  # noqa: E402

KEY_ID, SECRET = "AKIDTABPILOTTEST", "test-secret-key"
ROLE = "arn:aws:iam::123456789012:role/training"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def binary_table(n: int = 300, seed: int = 0) -> np.ndarray:
    """Label first, then 4 features; the label follows the first two features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = ((X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.3, size=n)) > 0).astype(float)
    return np.column_stack([y, X])


def write_csv(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, rows, delimiter=",", fmt="%.6g")


def best_named(rows: list[list]) -> set[str]:
    """The training jobs of an analytics dataframe's rows ([name, objective, ...]) that share
    the best objective: jobs on 100 validation rows often tie on AUC, and a tie's order in
    the dataframe's sort is arbitrary, so the tuner's best must be one of these."""
    top = max(row[1] for row in rows)
    return {row[0] for row in rows if row[1] == top}


@dataclass
class Served:
    server: ThreadServer
    s3_root: Path
    workspace: Path
    trusted: Path

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, service: str = "sagemaker"):
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                            config=Config(retries={"max_attempts": 1}))

    def wait(self, name: str, seconds: float = 90) -> dict:
        sm = self.client()
        until = time.time() + seconds
        while time.time() < until:
            described = sm.describe_training_job(TrainingJobName=name)
            if described["TrainingJobStatus"] not in ("InProgress", "Stopping"):
                return described
            time.sleep(0.3)
        log = (self.workspace / "logs" / f"training-{name}.log")
        raise AssertionError(f"{name} still running; log: "
                             f"{log.read_text()[-2000:] if log.exists() else 'none'}")

    def wait_endpoint(self, name: str, seconds: float = 30) -> dict:
        sm = self.client()
        until = time.time() + seconds
        while time.time() < until:
            described = sm.describe_endpoint(EndpointName=name)
            if described["EndpointStatus"] != "Creating":
                return described
            time.sleep(0.2)
        raise AssertionError(f"endpoint {name} still Creating")


def training_request(name: str, hyperparameters: dict[str, str], image: str = XGBOOST,
                     channels: dict[str, str] | None = None,
                     content_type: str = "text/csv") -> dict:
    channels = channels or {"train": "s3://bucket/train/", "validation": "s3://bucket/validation/"}
    return dict(
        TrainingJobName=name, RoleArn=ROLE, HyperParameters=hyperparameters,
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
        InputDataConfig=[{"ChannelName": c, "ContentType": content_type,
                          "DataSource": {"S3DataSource": {
                              "S3DataType": "S3Prefix", "S3Uri": uri,
                              "S3DataDistributionType": "FullyReplicated"}}}
                         for c, uri in channels.items()],
        OutputDataConfig={"S3OutputPath": "s3://bucket/output"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1,
                        "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
