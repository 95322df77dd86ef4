"""The fast part of tracking (in `make test`): one tiny real job run with a tracking URI
where no server listens, then the lineage of what was made from it."""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import threading
from pathlib import Path

import pytest
from trackinglib import TINY_JOB, binary_table

from tabpilot.automl import AutoML
from tabpilot.serving.ports import free_port
from tabpilot.store import Store
from tabpilot.tracking.lineage import EXECUTION, SCHEDULE, lineage


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory):
    """(workspace, job name, table path, tracking warnings) of a job told to log to a
    server that is down."""
    root = tmp_path_factory.mktemp("lineage")
    table = root / "train.csv"
    binary_table().to_csv(table, index=False)
    handler = _Records()
    logger = logging.getLogger("tabpilot.tracking")
    logger.addHandler(handler)
    try:
        down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        automl = AutoML("y", workspace=root / "ws", mlflow=down, **TINY_JOB).fit(table)
    finally:
        logger.removeHandler(handler)
    return root / "ws", automl.name, table, handler.records


def test_a_down_tracking_server_costs_one_warning_not_the_job(job) -> None:
    workspace, name, _, records = job
    store = Store.for_workspace(workspace, create=False)
    assert store.get_job(name).status == "Completed"
    assert len(records) == 1
    message = records[0].getMessage()
    assert "not logged to MLflow" in message and f"tabpilot track {name}" in message
    assert "\n" not in message
    assert store.find_resource("mlflow-run", name) is None  # nothing claims it was logged


def test_the_job_records_its_dataset_hash(job) -> None:
    workspace, name, table, _ = job
    record = json.loads((workspace / "jobs" / name / "job.json").read_text())
    assert record["dataset_sha256"] == hashlib.sha256(table.read_bytes()).hexdigest()


def test_lineage_of_an_endpoint_reaches_dataset_job_candidate_schedule_executions(
        job, cli) -> None:
    workspace, name, table, _ = job
    store = Store.for_workspace(workspace, create=False)
    best = store.get_job(name).best_candidate
    other = next(c.name for c in store.list_candidates(name) if c.name != best)
    assert cli("deploy", name, "--endpoint", "churn", workspace=workspace).returncode == 0
    # the SageMaker API's deploy records no job: found through the model's directory
    store.put_endpoint("side", store.get_candidate(name, other).artifact_dir, job=None,
                       candidate=None)
    # engineer A's kinds, in the shapes the contract names
    store.add_resource(SCHEDULE, "churn-hourly", {
        "EndpointName": "churn", "MonitoringType": "DataQuality",
        "MonitoringJobDefinitionName": "churn-dq", "ScheduleExpression": "cron(0 * ? * * *)"},
        status="Scheduled")
    for hour in range(2):  # ScheduledTime in epoch seconds, as the scheduler keeps it
        store.add_resource(EXECUTION, f"churn-hourly-{hour}", {
            "MonitoringScheduleName": "churn-hourly", "EndpointName": "churn",
            "ScheduledTime": 1767225600.0 + 3600 * hour, "Output": "somewhere"},
            status="CompletedWithViolations" if hour else "Completed")

    graph = lineage(store, "churn")
    ids = {v["Id"] for v in graph["Vertices"]}
    digest = hashlib.sha256(table.read_bytes()).hexdigest()
    assert {f"dataset:{digest}", f"job:{name}", f"candidate:{name}/{best}", "endpoint:churn",
            "monitoring-schedule:churn-hourly", "monitoring-execution:churn-hourly-0",
            "monitoring-execution:churn-hourly-1"} == ids
    edges = {(e["SourceId"], e["DestinationId"]) for e in graph["Edges"]}
    assert (f"candidate:{name}/{best}", "endpoint:churn") in edges
    assert ("endpoint:churn", "monitoring-schedule:churn-hourly") in edges

    side = {v["Id"] for v in lineage(store, "side")["Vertices"]}
    assert f"candidate:{name}/{other}" in side and f"job:{name}" in side

    # a job's lineage: every candidate, both endpoints
    whole = {v["Id"] for v in lineage(store, name)["Vertices"]}
    assert {"endpoint:churn", "endpoint:side"} <= whole
    assert len([i for i in whole if i.startswith("candidate:")]) == len(
        store.list_candidates(name))

    shown = cli("lineage", "churn-hourly", workspace=workspace)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"dataset {table}") and digest[:16] in lines[0]
    assert [line.split()[1] for line in lines[1:5]] == ["job", "candidate", "endpoint",
                                                      "monitoring"]
    assert lines[-1].split()[1:] == ["execution", "churn-hourly-1", "[CompletedWithViolations]",
                                     "2026-01-01T01:00:00Z"]
    as_json = json.loads(cli("lineage", f"{name}/{best}", "--json",
                             workspace=workspace).stdout)
    assert as_json["Query"]["Kind"] == "candidate"
    assert "endpoint:churn" in {v["Id"] for v in as_json["Vertices"]}


def test_lineage_refuses_unknown_and_ambiguous_names_in_one_line(job, cli) -> None:
    workspace, name, _, _ = job
    missing = cli("lineage", "no-such-thing", workspace=workspace)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "no job, candidate, endpoint or monitoring schedule" in missing.stderr
    store = Store.for_workspace(workspace, create=False)
    # an endpoint named like the job, serving its best model: the job's lineage holds both
    store.put_endpoint(name, store.get_candidate(name, store.get_job(name).best_candidate)
                       .artifact_dir)
    same = cli("lineage", name, "--json", workspace=workspace)
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["Query"]["Kind"] == "job"
    assert f"endpoint:{name}" in {v["Id"] for v in json.loads(same.stdout)["Vertices"]}
    # ... now serving a model from elsewhere: two unrelated things, one name
    store.put_endpoint(name, str(Path(workspace) / "elsewhere" / "model"))
    both = cli("lineage", name, workspace=workspace)
    assert both.returncode == 2 and "--kind" in both.stderr
    assert both.stderr.count("\n") == 1
    assert cli("lineage", name, "--kind", "job", workspace=workspace).returncode == 0
    shown = cli("lineage", name, "--kind", "endpoint", workspace=workspace)
    assert shown.returncode == 0 and shown.stdout.startswith(f"endpoint {name} ")


def test_an_old_job_without_a_recorded_hash_is_hashed_from_its_copy(job, tmp_path) -> None:
    workspace, name, table, _ = job
    from tabpilot.tracking.dataset import job_dataset

    record_path = Path(workspace) / "jobs" / name / "job.json"
    record = json.loads(record_path.read_text())
    old = tmp_path / "old-job"
    old.mkdir()
    copy = record["data"]["copies"]["input"]
    (old / copy).write_bytes((Path(workspace) / "jobs" / name / copy).read_bytes())
    record.pop("dataset_sha256")
    record["data"]["input"] = str(tmp_path / "gone.csv")  # the original file is gone
    (old / "job.json").write_text(json.dumps(record))
    found = job_dataset(old)
    assert found == {"sha256": hashlib.sha256(table.read_bytes()).hexdigest(),
                     "source": record["input"], "recorded": False}


class _Refusing(http.server.BaseHTTPRequestHandler):
    """A server that answers every request with 403: up, but refusing."""

    def _refuse(self) -> None:
        body = b'{"error_code": "PERMISSION_DENIED", "message": "no"}'
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = _refuse

    def log_message(self, *args) -> None:
        pass


def test_a_refusing_server_is_one_warning_and_no_record(job, caplog) -> None:
    pytest.importorskip("mlflow", reason="the mlflow extra (mlflow-skinny) is not installed")
    from tabpilot.tracking.mlflow import track_after_job

    workspace, name, _, _ = job
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        store = Store.for_workspace(workspace, create=False)
        with caplog.at_level(logging.WARNING, logger="tabpilot.tracking"):
            assert track_after_job(store, name, uri) is None
    finally:
        server.shutdown()
        server.server_close()
    [record] = [r for r in caplog.records if r.name == "tabpilot.tracking"]
    assert f"not logged to MLflow at {uri}" in record.getMessage()
    assert "PERMISSION_DENIED" in record.getMessage()
    assert store.find_resource("mlflow-run", name) is None
    assert store.get_job(name).status == "Completed"


def test_a_job_made_through_the_api_is_tracked_with_the_server_setting(job, monkeypatch
                                                                       ) -> None:
    """The API's worker process logs an ended job when TABPILOT_MLFLOW_URI is set; a down
    tracking server is one warning there too, and without the setting nothing is tried."""
    from tabpilot.api import worker

    workspace, name, _, _ = job
    store = Store.for_workspace(workspace, create=False)
    handler = _Records()
    logger = logging.getLogger("tabpilot.tracking")
    logger.addHandler(handler)
    try:
        monkeypatch.delenv("TABPILOT_MLFLOW_URI", raising=False)
        worker._track(store, name)
        assert handler.records == []
        monkeypatch.setenv("TABPILOT_MLFLOW_URI", f"http://127.0.0.1:{free_port()}")
        worker._track(store, name)
    finally:
        logger.removeHandler(handler)
    assert len(handler.records) == 1
    assert f"tabpilot track {name}" in handler.records[0].getMessage()
