"""Every captured request carries an inference id: the caller's (boto3's InferenceId, the
X-Amzn-SageMaker-Inference-Id header) or a new one, returned in the same header, so that
ground truth can be joined to the prediction later."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import httpx
from servinglib import ThreadServer, build_model, churn_table

from tabpilot.serving.app import ServerSettings, server_app
from tabpilot.store import Store

HEADER = "X-Amzn-SageMaker-Inference-Id"


def _captured(workspace: Path) -> list[dict]:
    return [json.loads(line) for path in sorted((workspace / "capture").rglob("*.jsonl"))
            for line in path.read_text().splitlines()]


def test_inference_ids_are_honoured_made_up_and_checked(tmp_path: Path) -> None:
    model = build_model(tmp_path / "models" / "m" / "model", n_estimators=10)
    Store.for_workspace(tmp_path).put_endpoint("churn", str(model), capture_percent=100.0)
    row = churn_table(5).drop(columns="label").iloc[:1].to_csv(index=False, header=False)
    with ThreadServer(server_app(ServerSettings(workspace=tmp_path, poll_seconds=0.2))) as server:
        url = f"{server.url}/endpoints/churn/invocations"
        given = httpx.post(url, content=row, headers={"Content-Type": "text/csv",
                                                      HEADER: "order-42"})
        made_up = httpx.post(url, content=row, headers={"Content-Type": "text/csv"})
        too_long = httpx.post(url, content=row, headers={"Content-Type": "text/csv",
                                                         HEADER: "x" * 65})
        runtime = boto3.client("sagemaker-runtime", endpoint_url=server.url,
                               region_name="us-east-1", aws_access_key_id="x",
                               aws_secret_access_key="y")
        runtime.invoke_endpoint(EndpointName="churn", ContentType="text/csv", Body=row,
                                InferenceId="boto-7")
    assert given.status_code == 200 and given.headers[HEADER] == "order-42"
    assert made_up.status_code == 200 and len(made_up.headers[HEADER]) == 32
    assert too_long.status_code == 400 and "1 to 64 printable" in too_long.text
    ids = [r["eventMetadata"]["inferenceId"] for r in _captured(tmp_path)]
    assert ids == ["order-42", made_up.headers[HEADER], "boto-7"]  # the refused one: none
