"""Human review against a real `tabpilot serve` process: SageMaker's flow definitions and
the A2I runtime through boto3, an endpoint's low-confidence predictions routed to review
by real requests, reviewers answering through the page's forms (cookie and CSRF
honoured), and a reviewer's token opening nothing but the page."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from reviewlib import ROLE, TOKEN, WORKTEAM, Reviewer, Server, ThreadedServer
from servinglib import build_model, churn_table, wait_until

from tabpilot.artifacts import load
from tabpilot.review.routing import doubt, loop_key
from tabpilot.store import Store

ROWS = 30


def _row_csv(frame, i: int) -> str:
    return frame.iloc[[i]].to_csv(index=False, header=False)


def _threshold(confidence) -> float:
    """A cut between two distinct confidences, about a third of the rows below it."""
    ordered = sorted(set(float(c) for c in confidence))
    k = max(1, len(ordered) // 3)
    return (ordered[k - 1] + ordered[k]) / 2


def _cli(*args: str, workspace: Path) -> str:
    """`tabpilot ARGS -w WORKSPACE` in this process; its standard output."""
    from typer.testing import CliRunner

    from tabpilot.cli import app

    result = CliRunner().invoke(app, [*args, "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module", params=["thread", pytest.param("process", marks=pytest.mark.slow)])
def served(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The server `tabpilot serve` builds (in a thread here; in its own process with -m slow),
    an endpoint routed to a TaskCount-2 flow, three reviewers, and ROWS real requests."""
    tmp = tmp_path_factory.mktemp("review")
    workspace, s3, out = tmp / "ws", tmp / "s3", tmp / "review-out"
    (s3 / "bucket").mkdir(parents=True)
    model_dir = build_model(tmp / "models" / "churn" / "model", n_estimators=10, compiled=False)
    store = Store.for_workspace(workspace)
    store.put_endpoint("churn", str(model_dir), capture_percent=100.0)
    tokens = {name: _cli("review", "reviewer", "add", name, workspace=workspace).strip()
              for name in ("alice", "bob", "carol")}
    traffic = churn_table(ROWS, seed=7).drop(columns="label")
    model = load(model_dir)
    checked, _ = model.check(traffic.astype(str), "error")
    confidence = doubt(model.predictor.predict_proba(checked).to_numpy(), margin=False)
    below = _threshold(confidence)
    _cli("review", "flow", "create", "churn-review", "--output", str(out), "--task-count", "2",
         "--title", "Will this customer churn?", workspace=workspace)
    _cli("review", "route", "churn", "--flow-definition", "churn-review", "--below", str(below),
         workspace=workspace)
    server = Server(workspace, s3) if request.param == "process" else ThreadedServer(workspace, s3)
    try:
        a2i = server.client("sagemaker-a2i-runtime")
        flow_arn = server.client("sagemaker").describe_flow_definition(
            FlowDefinitionName="churn-review")["FlowDefinitionArn"]
        url = f"{server.url}/endpoints/churn/invocations"
        auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"}
        low = int(confidence.argmin())

        def routing_live() -> bool:  # the server reads routes as it starts, and every second
            probe = f"probe-{time.monotonic_ns()}"
            httpx.post(url, content=_row_csv(traffic, low), headers={
                **auth, "X-Amzn-SageMaker-Inference-Id": probe}).raise_for_status()
            return _wait_exists(a2i, "auto-" + loop_key("churn", probe, 0)[:40], 5)

        wait_until(routing_live, 60, "review routing to pick the route up", every=0.2)
        probes = {s["HumanLoopName"] for s in _summaries(a2i, flow_arn)}
        for i in range(ROWS):
            response = httpx.post(url, content=_row_csv(traffic, i),
                                  headers={**auth, "X-Amzn-SageMaker-Inference-Id": f"req-{i}"})
            assert response.status_code == 200, response.text
        expected = {"auto-" + loop_key("churn", f"req-{i}", 0)[:40]
                    for i in range(ROWS) if confidence[i] < below}
        # one worker takes predictions in order: once the last selected row has its loop,
        # every earlier prediction has been routed (or not)
        last = max(i for i in range(ROWS) if confidence[i] < below)
        wait_until(lambda: _exists(a2i, "auto-" + loop_key("churn", f"req-{last}", 0)[:40]),
                   60, "the last routed row's loop", every=0.2)
        yield {"server": server, "tokens": tokens, "flow_arn": flow_arn, "expected": expected,
               "probes": probes, "workspace": workspace, "out": out, "s3": s3, "below": below}
    finally:
        server.stop()


def _exists(a2i, name: str) -> bool:
    try:
        a2i.describe_human_loop(HumanLoopName=name)
        return True
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ResourceNotFoundException"
        return False


def _wait_exists(a2i, name: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _exists(a2i, name):
            return True
        time.sleep(0.2)
    return False


def _summaries(a2i, flow_arn: str) -> list[dict]:
    found = []
    for page in a2i.get_paginator("list_human_loops").paginate(
            FlowDefinitionArn=flow_arn, PaginationConfig={"PageSize": 7}):
        found += page["HumanLoopSummaries"]
    return found


def test_one_loop_per_row_below_the_threshold(served: dict) -> None:
    a2i = served["server"].client("sagemaker-a2i-runtime")
    names = {s["HumanLoopName"] for s in _summaries(a2i, served["flow_arn"])}
    assert 0 < len(served["expected"]) < ROWS  # the threshold splits the traffic
    assert names - served["probes"] == served["expected"]
    one = a2i.describe_human_loop(HumanLoopName=sorted(served["expected"])[0])
    assert one["FlowDefinitionArn"] == served["flow_arn"]
    assert one["HumanLoopStatus"] in ("InProgress", "Completed")


def test_reviewers_agree_disagree_and_escalate_through_the_form(served: dict) -> None:
    server, tokens = served["server"], served["tokens"]
    a2i = server.client("sagemaker-a2i-runtime")
    alice, bob, carol = (Reviewer(server.url, n, tokens[n]) for n in ("alice", "bob", "carol"))
    signed = alice.sign_in()
    assert signed.status_code == 303 and signed.headers["location"] == "/review/"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/review" in cookie
    for reviewer in (bob, carol):
        assert reviewer.sign_in().status_code == 303

    page = alice.task()
    assert "Will this customer churn?" in page and "probability" in page
    first = _loop_of(page)
    assert _loop_of(bob.task()) == first  # TaskCount 2: the same item for both
    forged = bob.http.post("/review/answer", data={"csrf": "forged", "loop": first,
                                                   "label": "yes"})
    assert forged.status_code == 403
    assert alice.answer("yes").status_code == 303
    assert bob.answer("yes").headers["location"] == f"/review/?answered={first}"
    done = a2i.describe_human_loop(HumanLoopName=first)
    assert done["HumanLoopStatus"] == "Completed"
    uri = done["HumanLoopOutput"]["OutputS3Uri"]
    assert uri.startswith(f"{served['out']}/churn-review/") and uri.endswith(f"/{first}/output.json")
    local = Path(uri)
    output = json.loads(local.read_text())
    assert {a["workerId"] for a in output["humanAnswers"]} == {"alice", "bob"}
    assert output["consensus"]["agreement"] == 1.0 and output["humanLoopName"] == first
    assert "100% agreement" in bob.http.get(f"/review/?answered={first}").text

    second = _loop_of(alice.task())
    assert second != first and _loop_of(bob.task()) == second
    alice.answer("yes")
    bob.answer("no")
    assert a2i.describe_human_loop(HumanLoopName=second)["HumanLoopStatus"] == "InProgress"
    assert _loop_of(carol.task()) == second  # the tie went to a third reviewer
    carol.answer("no")
    settled = a2i.describe_human_loop(HumanLoopName=second)
    assert settled["HumanLoopStatus"] == "Completed"
    local = Path(settled["HumanLoopOutput"]["OutputS3Uri"])
    consensus = json.loads(local.read_text())["consensus"]
    assert consensus["label"] == "no" and consensus["agreement"] == pytest.approx(2 / 3)
    audit = [json.loads(line)["event"] for line in
             (served["workspace"] / "review" / "audit.jsonl").read_text().splitlines()]
    assert "escalated" in audit and audit.count("loop-completed") >= 2
    truth = [json.loads(p.read_text()) for p in
             (served["workspace"] / "ground-truth" / "churn").rglob("*.jsonl")]
    assert {t["eventMetadata"]["eventId"] for t in truth} >= {output["inputContent"]
                                                              ["inferenceId"]}


def _loop_of(page: str) -> str:
    from reviewlib import field

    return field(page, "loop")


def test_a_reviewer_token_opens_only_the_review_page(served: dict) -> None:
    server, token = served["server"], served["tokens"]["alice"]
    reviewer = Reviewer(server.url, "alice", token)
    session = reviewer.sign_in().cookies.get("tabpilot_review")
    assert session
    bearer = {"Authorization": f"Bearer {token}"}
    api = httpx.post(f"{server.url}/", headers={**bearer, "X-Amz-Target":
                     "SageMaker.ListFlowDefinitions", "Content-Type":
                     "application/x-amz-json-1.1"}, content=b"{}")
    assert api.status_code == 401 and api.json()["__type"] == "UnauthorizedException"
    row = "10,basic,50.0\n"
    invoke = httpx.post(f"{server.url}/endpoints/churn/invocations", content=row,
                        headers={**bearer, "Content-Type": "text/csv"})
    assert invoke.status_code == 401
    with_cookie = {"Cookie": f"tabpilot_review={session}", "Content-Type": "text/csv"}
    assert httpx.post(f"{server.url}/endpoints/churn/invocations", content=row,
                      headers=with_cookie).status_code == 401
    assert httpx.get(f"{server.url}/human-loops/x", headers=with_cookie).status_code == 401
    anonymous = httpx.get(f"{server.url}/review/")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/review/login"
    wrong = Reviewer(server.url, "alice", token + "x").sign_in()
    assert wrong.status_code == 401 and "tabpilot_review=" not in \
        wrong.headers.get("set-cookie", "").replace("tabpilot_review_login=", "")


def test_a2i_runtime_round_trip_with_boto3(served: dict) -> None:
    server = served["server"]
    sagemaker = server.client("sagemaker")
    a2i = server.client("sagemaker-a2i-runtime")
    flow = sagemaker.describe_flow_definition(FlowDefinitionName="churn-review")
    assert flow["FlowDefinitionStatus"] == "Active"
    assert flow["HumanLoopConfig"]["TaskCount"] == 2
    assert "churn-review" in [f["FlowDefinitionName"] for f in
                              sagemaker.list_flow_definitions()["FlowDefinitionSummaries"]]
    ui_arn = sagemaker.create_human_task_ui(
        HumanTaskUiName="manual-ui", UiTemplate={"Content": "<p>{{ task.input.x }}</p>"}
    )["HumanTaskUiArn"]
    assert sagemaker.describe_human_task_ui(HumanTaskUiName="manual-ui")["HumanTaskUiStatus"] \
        == "Active"
    with pytest.raises(ClientError) as outside:  # outputs only where the server may write
        sagemaker.create_flow_definition(
            FlowDefinitionName="elsewhere", RoleArn=ROLE,
            OutputConfig={"S3OutputPath": "file:///etc/review"},
            HumanLoopConfig={"WorkteamArn": WORKTEAM, "HumanTaskUiArn": ui_arn,
                             "TaskTitle": "t", "TaskDescription": "d", "TaskCount": 1})
    assert "OutputConfig.S3OutputPath" in outside.value.response["Error"]["Message"]
    manual = sagemaker.create_flow_definition(
        FlowDefinitionName="manual", RoleArn=ROLE, OutputConfig={"S3OutputPath":
                                                                 "s3://bucket/manual"},
        HumanLoopConfig={"WorkteamArn": WORKTEAM, "HumanTaskUiArn": ui_arn, "TaskTitle": "t",
                         "TaskDescription": "d", "TaskCount": 1})["FlowDefinitionArn"]
    started = a2i.start_human_loop(HumanLoopName="manual-1", FlowDefinitionArn=manual,
                                   HumanLoopInput={"InputContent": json.dumps({"x": 1})})
    assert started["HumanLoopArn"].endswith(":human-loop/manual-1")
    described = a2i.describe_human_loop(HumanLoopName="manual-1")
    assert described["HumanLoopStatus"] == "InProgress"
    assert described["CreationTime"].year >= 2026
    listed = a2i.list_human_loops(FlowDefinitionArn=manual, SortOrder="Ascending")
    assert [s["HumanLoopName"] for s in listed["HumanLoopSummaries"]] == ["manual-1"]
    window = a2i.list_human_loops(FlowDefinitionArn=manual, CreationTimeAfter=datetime(2020, 1, 1),
                                  CreationTimeBefore=datetime(2100, 1, 1))
    later = a2i.list_human_loops(FlowDefinitionArn=manual, CreationTimeAfter=datetime(2100, 1, 1))
    assert len(window["HumanLoopSummaries"]) == 1 and later["HumanLoopSummaries"] == []
    with pytest.raises(ClientError) as again:
        a2i.start_human_loop(HumanLoopName="manual-1", FlowDefinitionArn=manual,
                             HumanLoopInput={"InputContent": "{}"})
    assert again.value.response["Error"]["Code"] == "ConflictException"
    with pytest.raises(ClientError) as busy:
        sagemaker.delete_flow_definition(FlowDefinitionName="manual")
    assert busy.value.response["Error"]["Code"] == "ResourceInUse"
    with pytest.raises(ClientError) as running:
        a2i.delete_human_loop(HumanLoopName="manual-1")
    assert running.value.response["Error"]["Code"] == "ValidationException"
    a2i.stop_human_loop(HumanLoopName="manual-1")
    assert a2i.describe_human_loop(HumanLoopName="manual-1")["HumanLoopStatus"] == "Stopped"
    a2i.delete_human_loop(HumanLoopName="manual-1")
    with pytest.raises(ClientError) as gone:
        a2i.describe_human_loop(HumanLoopName="manual-1")
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as bad:
        a2i.start_human_loop(HumanLoopName="Bad_Name", FlowDefinitionArn=manual,
                             HumanLoopInput={"InputContent": "{}"})
    assert bad.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as unknown:
        a2i.start_human_loop(HumanLoopName="x", FlowDefinitionArn=manual + "-nope",
                             HumanLoopInput={"InputContent": "{}"})
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as used:
        sagemaker.delete_human_task_ui(HumanTaskUiName="manual-ui")
    assert used.value.response["Error"]["Code"] == "ResourceInUse"
    sagemaker.delete_flow_definition(FlowDefinitionName="manual")
    sagemaker.delete_human_task_ui(HumanTaskUiName="manual-ui")
    with pytest.raises(ClientError) as refused:  # a wrong signature: the guard's 403
        boto3.client("sagemaker-a2i-runtime", endpoint_url=server.url, region_name="us-east-1",
                     aws_access_key_id="AKIDREVIEWTEST", aws_secret_access_key="wrong"
                     ).list_human_loops(FlowDefinitionArn=manual)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
