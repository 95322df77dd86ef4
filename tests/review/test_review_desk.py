"""The review desk on its own: leases that expire, TaskCount distinct reviewers, majority
consensus with ties escalated, the loop's outputs and the audit log; and the routing rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from reviewlib import make_flow

from tabpilot.errors import TabpilotError
from tabpilot.review.consensus import ceiling, decide
from tabpilot.review.desk import COMPLETED, FAILED, LeaseError, ReviewDesk, event_id
from tabpilot.review.routing import Route, audited, loop_key, select
from tabpilot.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _desk(tmp_path: Path, **flow) -> tuple[ReviewDesk, Clock]:
    store = Store.for_workspace(tmp_path / "ws")
    make_flow(store, "churn", tmp_path / "out", **flow)
    clock = Clock()
    return ReviewDesk(store, tmp_path / "ws", clock), clock


def _content(event: str = "req-1") -> str:
    return json.dumps({"endpointName": "churn-ep", "inferenceId": event, "rowIndex": 0,
                       "rowsInRequest": 1, "row": {"tenure": 3.0, "plan": "basic"},
                       "prediction": "yes", "probabilities": {"no": 0.45, "yes": 0.55},
                       "labels": ["no", "yes"], "target": "label"})


def test_an_expired_lease_returns_the_task_to_the_queue(tmp_path: Path) -> None:
    desk, clock = _desk(tmp_path, task_count=1, task_seconds=60)
    desk.start("loop-1", "churn", _content())
    assert desk.next_task("alice").loop == "loop-1"
    assert desk.next_task("alice").loop == "loop-1"  # the same lease, shown again
    assert desk.next_task("bob") is None  # one reviewer needed, and alice holds it
    clock.now += 61
    assert desk.next_task("bob").loop == "loop-1"  # alice's lease ran out
    with pytest.raises(LeaseError):
        desk.submit("alice", "loop-1", "yes")
    assert desk.submit("bob", "loop-1", "no").label == "no"
    row = desk.get("loop-1")
    assert row.status == COMPLETED and [a["workerId"] for a in row.spec["answers"]] == ["bob"]
    events = [e["event"] for e in desk.audit.events()]
    assert "lease-expired" in events and events[-1] == "loop-completed"


def test_distinct_reviewers_majority_and_an_escalated_tie(tmp_path: Path) -> None:
    desk, clock = _desk(tmp_path, task_count=2)
    desk.start("loop-1", "churn", _content("req-1"))
    desk.start("loop-2", "churn", _content("req-2"))
    for reviewer in ("alice", "bob"):
        assert desk.next_task(reviewer).loop == "loop-1"
    clock.now += 5
    assert desk.submit("alice", "loop-1", "yes").state == "waiting"
    assert desk.next_task("alice").loop == "loop-2"  # never loop-1 again
    tie = desk.submit("bob", "loop-1", "no")
    assert tie.state == "escalate" and desk.get("loop-1").spec["needed"] == 3
    assert desk.next_task("carol").loop == "loop-1"  # the tie asks a third reviewer
    done = desk.submit("carol", "loop-1", "yes")
    assert (done.state, done.label, done.agreement) == ("decided", "yes", pytest.approx(2 / 3))
    row = desk.get("loop-1")
    assert row.status == COMPLETED
    outputs = list((tmp_path / "out" / "churn").rglob("output.json"))
    assert len(outputs) == 1 and outputs[0].parent.name == "loop-1"
    document = json.loads(outputs[0].read_text())
    assert [a["workerId"] for a in document["humanAnswers"]] == ["alice", "bob", "carol"]
    assert document["humanAnswers"][0]["answerContent"] == {"label": "yes"}
    assert document["humanAnswers"][0]["timeSpentInSeconds"] == pytest.approx(5.0)
    assert document["inputContent"]["inferenceId"] == "req-1"
    assert document["flowDefinitionArn"].endswith(":flow-definition/churn")
    assert row.spec["OutputS3Uri"].endswith("/loop-1/output.json")
    truth = list((tmp_path / "ws" / "ground-truth" / "churn-ep").rglob("*.jsonl"))
    assert [json.loads(p.read_text()) for p in truth] == [{
        "groundTruthData": {"data": "yes", "encoding": "CSV"},
        "eventMetadata": {"eventId": "req-1"}, "eventVersion": "0"}]
    with pytest.raises(TabpilotError, match="not one of"):
        desk.submit("alice", "loop-2", "maybe")


def test_a_loop_nobody_finishes_in_its_lifetime_fails(tmp_path: Path) -> None:
    desk, clock = _desk(tmp_path, task_count=1, lifetime_seconds=100)
    desk.start("loop-1", "churn", _content())
    clock.now += 101
    assert desk.next_task("alice") is None
    assert desk.get("loop-1").status == FAILED


def test_stopping_lets_a_lease_holder_finish_then_stops(tmp_path: Path) -> None:
    desk, _ = _desk(tmp_path, task_count=2)
    desk.start("loop-1", "churn", _content())
    desk.start("loop-2", "churn", _content("req-2"))
    assert desk.next_task("alice").loop == "loop-1"
    desk.stop("loop-1")
    desk.stop("loop-2")  # nobody holds it: Stopped at once
    assert (desk.get("loop-1").status, desk.get("loop-2").status) == ("Stopping", "Stopped")
    assert desk.next_task("bob") is None  # a stopping loop is offered to nobody new
    assert desk.next_task("alice").loop == "loop-1"  # but its holder keeps it
    assert desk.submit("alice", "loop-1", "yes").state == "stopped"
    row = desk.get("loop-1")
    assert row.status == "Stopped" and len(row.spec["answers"]) == 1
    desk.start("loop-3", "churn", _content("req-3"))
    with pytest.raises(TabpilotError, match="stop it first"):
        desk.delete("loop-3")
    desk.delete("loop-1")


def test_the_audit_log_is_only_appended_to(tmp_path: Path) -> None:
    desk, _ = _desk(tmp_path, task_count=1)
    desk.start("loop-1", "churn", _content())
    before = desk.audit.path.read_bytes()
    desk.next_task("alice")
    desk.submit("alice", "loop-1", "yes")
    after = desk.audit.path.read_bytes()
    assert after.startswith(before) and len(after) > len(before)


def test_ground_truth_event_ids_match_the_capture() -> None:
    assert event_id({"inferenceId": "r-1", "rowIndex": 0, "rowsInRequest": 1}) == "r-1"
    assert event_id({"inferenceId": "r-1", "rowIndex": 2, "rowsInRequest": 3}) == "r-1:2"


def test_consensus_rule() -> None:
    assert decide(["a"], 2, 2).state == "waiting"
    assert decide(["a", "a"], 2, 2).agreement == 1.0
    assert decide(["a", "b", "c"], 3, 1).state == "no-majority"  # ceiling(1) == 3
    assert ceiling(2) == 5 and decide(["a", "b"], 2, 2).state == "escalate"


def test_routing_selects_by_confidence_or_margin_and_audits_reproducibly() -> None:
    proba = np.array([[0.55, 0.45], [0.9, 0.1], [0.35, 0.65]])
    assert select(Route("ep", "f", 0.7), proba, "e") == [(0, "below-threshold"),
                                                          (2, "below-threshold")]
    assert select(Route("ep", "f", 0.2, margin=True), proba, "e") == [(0, "below-threshold")]
    everyone = select(Route("ep", "f", 0.01, audit_percent=100), proba, "e")
    assert everyone == [(0, "audit"), (1, "audit"), (2, "audit")]
    assert select(Route("ep", "f", 0.01, audit_percent=0), proba, "e") == []
    keys = [loop_key("ep", f"event-{i}", 0) for i in range(2000)]
    share = sum(audited(k, 2.0) for k in keys) / len(keys)
    assert 0.01 < share < 0.03 and [audited(k, 2.0) for k in keys] == \
        [audited(k, 2.0) for k in keys]


def test_the_tap_only_enqueues_bounded_and_never_fails_a_request(tmp_path: Path) -> None:
    import pandas as pd
    from servinglib import build_model, churn_table

    from tabpilot.artifacts import load
    from tabpilot.review.routing import Router, set_route
    from tabpilot.serving.app import Live, invoke

    model_dir = build_model(tmp_path / "m" / "model", n_estimators=5, compiled=False)
    model = load(model_dir)

    def broken(*_: object) -> None:
        raise RuntimeError("review is down")

    body = churn_table(3).drop(columns="label").to_csv(index=False, header=False).encode()
    answered = invoke(Live(model, 1, tap=broken), body, "text/csv", None, None)
    assert answered.status_code == 200 and answered.body.count(b"\n") == 3

    desk, _ = _desk(tmp_path)
    desk.store.put_endpoint("ep", str(model_dir))
    set_route(desk.store, Route("ep", "churn", 0.9))
    router = Router(desk, desk.store, capacity=4)
    router._refresh()
    rows = pd.DataFrame({"x": range(3)})
    router.tap("ep", model, rows, "e1")
    router.tap("ep", model, rows, "e2")  # 6 rows waiting would pass the bound: dropped
    router.tap("other", model, rows, "e3")  # not routed: ignored
    assert router._queue.qsize() == 1 and router.dropped == 1
