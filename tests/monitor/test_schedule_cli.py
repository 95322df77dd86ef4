"""`tabpilot monitor schedule ...` and `monitor executions` over a workspace, and the
scheduler that `tabpilot serve` runs, scanning that workspace's store: a slot runs once, in
a real worker process."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from servinglib import wait_until

from tabpilot.api.context import ApiContext
from tabpilot.api.locations import Locations
from tabpilot.api.scheduler import Scheduler
from tabpilot.monitor import COMPLETED
from tabpilot.monitor.baseline import write_baseline
from tabpilot.serving.capture import CaptureWriter
from tabpilot.store import Store

DONE = {"Completed", "CompletedWithViolations", "Failed"}


@pytest.fixture
def workspace(tmp_path: Path, mixed: tuple[pd.DataFrame, pd.DataFrame]) -> Path:
    """An endpoint `ep` whose held-out rows were captured just now, and a baseline."""
    base, held = mixed
    write_baseline(base, tmp_path / "base")
    ws = tmp_path / "ws"
    Store.for_workspace(ws).put_endpoint("ep", str(tmp_path / "model"), capture_percent=100.0)
    writer = CaptureWriter(ws / "capture", "ep", 100.0)
    for i in range(0, len(held), 100):
        writer.write(held.iloc[i:i + 100].to_csv(index=False).encode(),
                     "text/csv; header=present", b"", "text/csv")
    return ws


def scheduler(ws: Path) -> Scheduler:
    locations = Locations(ws, allow=[str(ws.parent)])
    return Scheduler(ApiContext(Store.for_workspace(ws), ws, locations), poll=3600)


def runs(cli, ws: Path, *args: str) -> list[dict]:
    listed = cli("monitor", "executions", *args, "--json", workspace=ws)
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def test_a_now_schedule_made_in_the_terminal_runs_once(workspace: Path, cli) -> None:
    ws, out = workspace, workspace.parent / "out"
    made = cli("monitor", "schedule", "create", "once", "--endpoint", "ep", "--schedule", "NOW",
               "--start", "-PT1H", "--end", "-PT0H", "--baseline", str(ws.parent / "base"),
               "-o", str(out), workspace=ws)
    assert made.returncode == 0, made.stderr
    assert (ws / "capture" / "ep" / "AllTraffic").is_dir()  # the variant level
    described = json.loads(cli("monitor", "schedule", "describe", "once", "--json",
                               workspace=ws).stdout)
    assert described["MonitoringScheduleStatus"] == "Scheduled"
    assert described["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == "NOW"
    assert runs(cli, ws) == []
    clock = scheduler(ws)
    (started,) = clock.scan()
    assert clock.scan() == [] and clock.scan(datetime.now(UTC) + timedelta(days=2)) == []
    wait_until(lambda: runs(cli, ws, "once")[0]["MonitoringExecutionStatus"] in DONE, 120,
               "the execution")
    (run,) = runs(cli, ws, "once")
    assert run["MonitoringExecutionStatus"] == COMPLETED, run
    assert run["ProcessingJobArn"].endswith(started)
    slot = datetime.fromtimestamp(run["ScheduledTime"], UTC)
    report = out / "ep" / "once" / slot.strftime("%Y/%m/%d/%H") / "constraint_violations.json"
    assert json.loads(report.read_text()) == {"violations": []}
    text = cli("monitor", "schedule", "describe", "once", workspace=ws).stdout
    assert "last execution: Completed" in text
    # stop, start, delete; the history stays
    for verb, status in (("stop", "Stopped"), ("start", "Scheduled")):
        assert cli("monitor", "schedule", verb, "once", workspace=ws).returncode == 0
        listed = json.loads(cli("monitor", "schedule", "list", "--json", workspace=ws).stdout)
        assert [(s["MonitoringScheduleName"], s["MonitoringScheduleStatus"]) for s in listed] \
            == [("once", status)]
    assert cli("monitor", "schedule", "delete", "once", workspace=ws).returncode == 0
    assert len(runs(cli, ws, "once")) == 1


def test_bad_schedules_fail_in_one_line(workspace: Path, cli) -> None:
    from monitorlib import assert_one_line_error

    ws = workspace
    assert_one_line_error(cli("monitor", "schedule", "create", "s", "--endpoint", "ep",
                              "--schedule", "cron(30 * ? * * *)", workspace=ws),
                          "cron(0 * ? * * *)", "NOW")
    assert_one_line_error(cli("monitor", "schedule", "create", "s", "--endpoint", "nowhere",
                              "--baseline", str(ws.parent / "base"), workspace=ws), "nowhere")
    assert_one_line_error(cli("monitor", "schedule", "create", "s", "--endpoint", "ep",
                              workspace=ws), "no default baseline")
    Store.for_workspace(ws).put_endpoint("quiet", str(ws.parent / "model"))
    assert_one_line_error(cli("monitor", "schedule", "create", "s", "--endpoint", "quiet",
                              "--baseline", str(ws.parent / "base"), workspace=ws),
                          "does not capture data")
    assert_one_line_error(cli("monitor", "schedule", "create", "s", "--endpoint", "ep",
                              "--start", "yesterday", "--baseline", str(ws.parent / "base"),
                              workspace=ws), "DataAnalysisStartTime")
    assert_one_line_error(cli("monitor", "schedule", "describe", "nothing", workspace=ws),
                          "nothing")
    assert_one_line_error(cli("monitor", "executions", "--status", "Done", workspace=ws),
                          "Done")


@pytest.mark.slow
def test_hourly_slots_run_once_each_and_only_the_latest_after_downtime(workspace: Path,
                                                                        cli) -> None:
    ws = workspace
    made = cli("monitor", "schedule", "create", "hourly", "--endpoint", "ep",
               "--baseline", str(ws.parent / "base"), "-o", str(ws.parent / "out"), workspace=ws)
    assert made.returncode == 0, made.stderr
    clock = scheduler(ws)
    now = datetime.now(UTC)
    assert clock.scan(now) == []  # its first slot is the next hour
    later = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1, minutes=5)
    assert len(clock.scan(later)) == 1
    assert clock.scan(later + timedelta(minutes=30)) == []  # running, then recorded
    wait_until(lambda: runs(cli, ws)[0]["MonitoringExecutionStatus"] in DONE, 120, "a run")
    # its window is the hour before the slot: the captures' hour, unless an hour began
    # between capturing and scanning
    (first,) = runs(cli, ws)
    slot = later.replace(minute=0)
    hour = next((ws / "capture" / "ep").rglob("*.jsonl")).relative_to(ws / "capture" / "ep")
    captured = datetime(*(int(p) for p in hour.with_suffix("").parts[-4:]), tzinfo=UTC)
    assert datetime.fromtimestamp(first["ScheduledTime"], UTC) == slot
    assert first["MonitoringExecutionStatus"] == \
        (COMPLETED if captured == slot - timedelta(hours=1) else "Failed"), first
    assert clock.scan(later + timedelta(minutes=50)) == []  # that slot ran already
    # a day of downtime: only the latest missed slot runs, over an hour with no captures
    assert len(clock.scan(later + timedelta(days=1))) == 1
    wait_until(lambda: all(r["MonitoringExecutionStatus"] in DONE for r in runs(cli, ws)), 120,
               "the second run")
    latest, _ = runs(cli, ws)
    assert datetime.fromtimestamp(latest["ScheduledTime"], UTC) == slot + timedelta(days=1)
    assert latest["MonitoringExecutionStatus"] == "Failed"
    assert "no captured requests" in latest["FailureReason"]
