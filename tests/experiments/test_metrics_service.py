"""The metrics service through a real boto3 `sagemaker-metrics` client (endpoint_url at
the server): BatchPutMetrics into a trial component, the summaries DescribeTrialComponent
reports (checked against numpy), Last by timestamp, BatchGetMetrics, and the refusals
(unknown component, bad data, unsigned or wrongly signed calls, an oversized body)."""

from __future__ import annotations

import json
import time
import urllib.request
from urllib.error import HTTPError

import numpy as np
import pytest
from botocore.exceptions import ClientError
from traininglib import KEY_ID, SECRET

from tabpilot.experiments import series


@pytest.fixture(scope="module")
def component(sm) -> str:
    sm.create_trial_component(TrialComponentName="metrics-run")
    return "metrics-run"


def _summary(sm, component: str, metric: str) -> dict:
    found = sm.describe_trial_component(TrialComponentName=component)["Metrics"]
    return next(m for m in found if m["MetricName"] == metric)


def test_summaries_are_exact(sm, metrics, component) -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(0.5, 0.2, 25)
    now = time.time()
    for start in range(0, 25, 10):  # 10 data points per call, as the SDK sends them
        metrics.batch_put_metrics(TrialComponentName=component, MetricData=[
            {"MetricName": "train:loss", "Timestamp": now + i, "Step": i, "Value": float(v)}
            for i, v in enumerate(values[start:start + 10], start)])
    got = _summary(sm, component, "train:loss")
    assert got["Count"] == 25
    assert got["Min"] == pytest.approx(values.min()) and got["Max"] == pytest.approx(values.max())
    assert got["Avg"] == pytest.approx(values.mean())
    assert got["StdDev"] == pytest.approx(values.std(ddof=1))
    assert got["Last"] == pytest.approx(values[-1])
    assert abs(got["TimeStamp"].timestamp() - (now + 24)) < 1


def test_last_is_the_latest_timestamp_not_the_latest_call(sm, metrics, component) -> None:
    now = time.time()
    metrics.batch_put_metrics(TrialComponentName=component, MetricData=[
        {"MetricName": "validation:auc", "Timestamp": now, "Value": 0.81}])
    metrics.batch_put_metrics(TrialComponentName=component, MetricData=[
        {"MetricName": "validation:auc", "Timestamp": now - 30, "Value": 0.5}])
    got = _summary(sm, component, "validation:auc")
    assert (got["Last"], got["Count"], got["Min"]) == (0.81, 2, 0.5)


def test_batch_get_metrics_per_step_and_per_minute(sm, metrics) -> None:
    sm.create_trial_component(TrialComponentName="metrics-get")
    arn = sm.describe_trial_component(TrialComponentName="metrics-get")["TrialComponentArn"]
    base = 60 * (int(time.time()) // 60) - 120
    metrics.batch_put_metrics(TrialComponentName="metrics-get", MetricData=[
        {"MetricName": "loss", "Timestamp": base + 10 * i, "Step": i // 2, "Value": float(i)}
        for i in range(8)])
    answer = metrics.batch_get_metrics(MetricQueries=[
        {"MetricName": "loss", "ResourceArn": arn, "MetricStat": "Avg",
         "Period": "IterationNumber", "XAxisType": "IterationNumber"},
        {"MetricName": "loss", "ResourceArn": arn, "MetricStat": "Count",
         "Period": "OneMinute", "XAxisType": "Timestamp"},
        {"MetricName": "absent", "ResourceArn": arn, "MetricStat": "Max",
         "Period": "IterationNumber", "XAxisType": "IterationNumber"}])["MetricQueryResults"]
    assert answer[0]["XAxisValues"] == [0, 1, 2, 3]
    assert answer[0]["MetricValues"] == [0.5, 2.5, 4.5, 6.5]
    assert answer[1]["XAxisValues"] == [base, base + 60]
    assert answer[1]["MetricValues"] == [6.0, 2.0]
    assert answer[2] == {"Status": "Complete", "XAxisValues": [], "MetricValues": []}


def test_unknown_component_and_bad_data_are_refused(metrics) -> None:
    with pytest.raises(ClientError) as caught:
        metrics.batch_put_metrics(TrialComponentName="never-made", MetricData=[
            {"MetricName": "loss", "Timestamp": time.time(), "Value": 1.0}])
    assert caught.value.response["Error"]["Code"] == "ResourceNotFound"
    assert "never-made" in caught.value.response["Error"]["Message"]


@pytest.mark.parametrize("datum, words", [
    ({"MetricName": "loss", "Timestamp": 1.7e9, "Value": 1.0, "Step": -1}, "greater than"),
    ({"MetricName": "loss", "Timestamp": 1.7e9, "Value": "high"}, "must be a number"),
    ({"MetricName": "loss", "Value": 1.0}, "must not be null"),
])
def test_bad_data_points_are_one_line(served, component, datum, words) -> None:
    body = json.dumps({"TrialComponentName": component, "MetricData": [datum]}).encode()
    with pytest.raises(HTTPError) as caught:
        urllib.request.urlopen(_signed(served.url + "/BatchPutMetrics", body), timeout=30)
    answer = json.loads(caught.value.read())
    assert caught.value.code == 400 and answer["__type"] == "ValidationException"
    assert words in answer["message"] and "\n" not in answer["message"]


def _signed(url: str, body: bytes, secret: str = SECRET) -> urllib.request.Request:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest("PUT", url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(KEY_ID, secret), "sagemaker", "us-east-1").add_auth(request)
    return urllib.request.Request(url, data=body, method="PUT", headers=dict(request.headers))


def _status(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except HTTPError as exc:
        return exc.code


def test_the_guard_and_the_body_cap_apply(served, component) -> None:
    url = served.url + "/BatchPutMetrics"
    body = json.dumps({"TrialComponentName": component, "MetricData": [
        {"MetricName": "guarded", "Timestamp": time.time(), "Value": 1.0}]}).encode()
    assert _status(_signed(url, body)) == 200
    assert _status(urllib.request.Request(url, data=body, method="PUT")) == 403  # unsigned
    assert _status(_signed(url, body, "not-the-secret")) == 403
    huge = json.dumps({"TrialComponentName": component, "MetricData": [
        {"MetricName": "x" * 200_000, "Timestamp": time.time(), "Value": 1.0}] * 2}).encode()
    assert _status(_signed(url, huge)) == 413


def test_concurrent_batches_all_count(served, sm) -> None:
    """The SDK's async sink sends a queue per metric from its own threads: no batch may
    overwrite another's points."""
    from concurrent.futures import ThreadPoolExecutor

    sm.create_trial_component(TrialComponentName="metrics-threads")
    now = time.time()

    def send(worker: int) -> None:
        client = served.client("sagemaker-metrics")
        for batch in range(5):
            client.batch_put_metrics(TrialComponentName="metrics-threads", MetricData=[
                {"MetricName": "loss", "Timestamp": now, "Step": worker * 50 + batch * 10 + i,
                 "Value": 1.0} for i in range(10)])

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(send, range(6)))
    assert _summary(sm, "metrics-threads", "loss")["Count"] == 300


def test_points_are_thinned_but_summaries_stay_exact() -> None:
    kept = series.add(None, ((float(i), i, float(i)) for i in range(series.MAX_POINTS + 1)))
    summary = series.summary(kept)
    assert summary["Count"] == series.MAX_POINTS + 1
    assert summary["Avg"] == pytest.approx(series.MAX_POINTS / 2)
    assert len(kept["points"]) <= series.MAX_POINTS
    assert kept["points"][0][2] == 0.0
