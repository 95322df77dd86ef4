"""The aws CLI (its own botocore) with --endpoint-url: create, describe, list."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from apilib import KEY_ID, SECRET, job_request

AWS = shutil.which("aws")
pytestmark = pytest.mark.skipif(AWS is None, reason="the aws CLI is not installed here")


def aws(api, *args: str) -> dict:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": ""}
    done = subprocess.run([AWS, "sagemaker", *args, "--endpoint-url", api.url,
                           "--output", "json"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def test_aws_cli_create_describe_list(api, tmp_path) -> None:
    request = tmp_path / "job.json"
    request.write_text(json.dumps(job_request("cli-job", seconds=30, candidates=1)))
    created = aws(api, "create-auto-ml-job-v2", "--cli-input-json", f"file://{request}")
    assert created["AutoMLJobArn"].endswith(":automl-job/cli-job")
    described = aws(api, "describe-auto-ml-job-v2", "--auto-ml-job-name", "cli-job")
    assert described["AutoMLJobName"] == "cli-job"
    assert described["AutoMLJobStatus"] in ("InProgress", "Completed")
    listed = aws(api, "list-auto-ml-jobs", "--name-contains", "cli-job")
    assert [j["AutoMLJobName"] for j in listed["AutoMLJobSummaries"]] == ["cli-job"]
    aws(api, "stop-auto-ml-job", "--auto-ml-job-name", "cli-job")
