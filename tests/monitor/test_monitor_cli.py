"""`tabpilot monitor baseline | run` end to end: tables, a job, captured requests written
by a real server's /invocations and by CaptureWriter itself, and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from monitorlib import assert_one_line_error, run_cli
from servinglib import ThreadServer, build_model, churn_table

from tabpilot.automl import AutoML
from tabpilot.errors import ConfigError
from tabpilot.monitor import COMPLETED, CONSTRAINTS, STATISTICS, VIOLATIONS, WITH_VIOLATIONS
from tabpilot.monitor.capture import parse_time, read_capture
from tabpilot.serving.app import ServerSettings, server_app
from tabpilot.serving.capture import CaptureWriter
from tabpilot.store import Store


def _checks(result: dict) -> set[tuple[str, str]]:
    return {(v["feature_name"], v["constraint_check_type"]) for v in result["Violations"]}


def test_baseline_and_run_over_tables(cancer, tmp_path: Path, cli) -> None:
    train, held = cancer
    train.to_csv(tmp_path / "train.csv", index=False)
    held.to_csv(tmp_path / "held.csv", index=False)
    held.assign(**{"mean area": held["mean area"] * 3}).to_csv(tmp_path / "shift.csv",
                                                                index=False)
    ws = tmp_path / "ws"
    made = cli("monitor", "baseline", str(tmp_path / "train.csv"), "-o",
                   str(tmp_path / "base"), workspace=ws)
    assert made.returncode == 0, made.stderr
    assert {p.name for p in (tmp_path / "base").iterdir()} >= {STATISTICS, CONSTRAINTS}
    done = cli("monitor", "run", str(tmp_path / "held.csv"), "--baseline",
                   str(tmp_path / "base"), "-o", str(tmp_path / "ok"), workspace=ws)
    assert done.returncode == 0 and done.stdout.startswith(f"{COMPLETED}:"), done.stderr
    assert json.loads((tmp_path / "ok" / VIOLATIONS).read_text()) == {"violations": []}
    shifted = cli("monitor", "run", str(tmp_path / "shift.csv"), "--baseline",
                      str(tmp_path / "base"), "-o", str(tmp_path / "bad"), "--json",
                      workspace=ws)
    assert shifted.returncode == 0, shifted.stderr
    result = json.loads(shifted.stdout)
    assert result["ExecutionStatus"] == WITH_VIOLATIONS
    assert _checks(result) == {("mean area", "baseline_drift_check")}
    written = json.loads((tmp_path / "bad" / VIOLATIONS).read_text())["violations"]
    assert written == result["Violations"]
    window = json.loads((tmp_path / "bad" / STATISTICS).read_text())
    assert window["dataset"]["item_count"] == len(held)


def test_a_jobs_baseline_is_its_training_data_without_the_target(tmp_path: Path, cli) -> None:
    frame = churn_table(200)
    AutoML("label", generate_candidates_only=True, algorithms=["lightgbm"],
           workspace=tmp_path, name="churn", verbosity=0).fit(frame)
    written = json.loads((tmp_path / "jobs" / "churn" / "monitoring" / "statistics.json")
                         .read_text())  # the job wrote it, from the table in memory
    assert {f["name"] for f in written["features"]} == set(frame.columns) - {"label"}
    assert written["dataset"]["item_count"] == 200
    done = cli("monitor", "baseline", "churn", "--json", workspace=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    folder = Path(result["Baseline"])
    assert folder.parent.name == "churn" and folder.name == "monitoring"
    assert set(result["Features"]) == set(frame.columns) - {"label"}
    assert result["Items"] == 200
    # the job's name is a baseline too
    frame.drop(columns="label").to_csv(tmp_path / "rows.csv", index=False)
    run = cli("monitor", "run", str(tmp_path / "rows.csv"), "--baseline", "churn",
                  "--json", workspace=tmp_path)
    assert run.returncode == 0 and json.loads(run.stdout)["ExecutionStatus"] == COMPLETED


def test_a_run_over_requests_captured_by_a_real_endpoint(tmp_path: Path, cli) -> None:
    model = build_model(tmp_path / "models" / "m" / "model", n_estimators=10)
    baseline = churn_table(300)
    baseline.drop(columns="label").to_csv(tmp_path / "train.csv", index=False)
    assert cli("monitor", "baseline", str(tmp_path / "train.csv"), "-o",
                   str(tmp_path / "base"), workspace=tmp_path).returncode == 0
    Store.for_workspace(tmp_path).put_endpoint("churn", str(model), capture_percent=100.0)
    rows = churn_table(400, seed=7).drop(columns="label").iloc[300:]
    shifted = rows.assign(charges=rows["charges"] * 3)
    settings = ServerSettings(workspace=tmp_path, poll_seconds=0.2)
    with ThreadServer(server_app(settings)) as server:
        url = f"{server.url}/endpoints/churn/invocations"
        for i in range(0, 100, 20):  # header-less CSV, in the model's column order
            body = rows.iloc[i:i + 20].to_csv(index=False, header=False)
            response = httpx.post(url, content=body, headers={"Content-Type": "text/csv"})
            assert response.status_code == 200, response.text
        calm = cli("monitor", "run", "churn", "--baseline", str(tmp_path / "base"),
                       "--start", "NOW-1H", "--json", workspace=tmp_path)
        response = httpx.post(url, json={"instances": shifted.to_dict("records")},
                              headers={"Accept": "text/csv"})
        assert response.status_code == 200, response.text
    assert calm.returncode == 0, calm.stderr
    result = json.loads(calm.stdout)
    assert (result["ExecutionStatus"], result["Window"]["Requests"], result["Window"]["Rows"]) \
        == (COMPLETED, 5, 100)
    drifted = cli("monitor", "run", "churn", "--baseline", str(tmp_path / "base"),
                      "--json", workspace=tmp_path)
    result = json.loads(drifted.stdout)
    assert result["Window"]["Rows"] == 200 and result["ExecutionStatus"] == WITH_VIOLATIONS
    assert _checks(result) == {("charges", "baseline_drift_check")}
    assert Path(result["Output"]).parent == tmp_path / "monitoring" / "churn"


def test_capture_files_read_back_in_every_body_shape_and_window(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path / "capture", "ep", 100.0)
    writer.write(b"1,x\n2,\n", "text/csv", b"", "text/csv")
    writer.write(b"a,b\n3,y\n", "text/csv; header=present", b"", "text/csv")
    writer.write(json.dumps({"instances": [{"a": 4, "b": "z"}, [5, "w", 9]]}).encode(),
                 "application/json", b"", "application/json")
    writer.write(b'{"a": 6, "b": "v"}\n', "application/jsonlines", b"", "application/json")
    old = tmp_path / "capture" / "ep" / "2020" / "01" / "01" / "00.jsonl"
    old.parent.mkdir(parents=True)
    record = json.loads(next((tmp_path / "capture" / "ep").rglob("*.jsonl")).read_text()
                        .splitlines()[0])
    record["eventMetadata"]["inferenceTime"] = "2020-01-01T00:30:00Z"
    old.write_text(json.dumps(record) + "\n")
    folder = tmp_path / "capture" / "ep"
    frame, requests = read_capture(folder, ["a", "b"])
    assert requests == 5 and len(frame) == 8
    recent, requests = read_capture(folder, ["a", "b"], start=parse_time("NOW-1H"))
    assert requests == 4
    assert recent["a"].tolist() == ["1", "2", "3", 4, 5, 6]
    assert recent["b"].tolist() == ["x", None, "y", "z", "w", "v"]
    assert recent["_c2"].dropna().tolist() == [9]  # beyond the baseline's columns
    early, _ = read_capture(folder, ["a", "b"], end=datetime(2020, 1, 1, 1, tzinfo=UTC))
    assert len(early) == 2


def test_times_take_iso_now_offsets_and_sagemakers_durations() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert parse_time("NOW", now) == now
    assert parse_time("NOW-2H", now) == now - timedelta(hours=2)
    assert parse_time("now - 30m", now) == now - timedelta(minutes=30)
    assert parse_time("-PT1H", now) == now - timedelta(hours=1)
    assert parse_time("-P1DT6H", now) == now - timedelta(days=1, hours=6)
    assert parse_time("2026-12-03T10:00:00Z", now) == datetime(2026, 12, 3, 10, tzinfo=UTC)
    assert parse_time("2026-12-03T10:00:00", now) == datetime(2026, 12, 3, 10, tzinfo=UTC)
    for bad in ("NOW-2X", "-PT", "yesterday", "NOW-"):
        with pytest.raises(ConfigError, match="is not a time"):
            parse_time(bad, now)


def test_bad_input_is_one_error_line_and_exit_2(cancer, tmp_path: Path, cli) -> None:
    _, held = cancer
    held.to_csv(tmp_path / "held.csv", index=False)
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli("monitor", "run", str(tmp_path / "held.csv"), "--baseline",
                                  str(tmp_path / "empty"), workspace=tmp_path / "ws"),
                          "no statistics.json", "tabpilot monitor baseline")
    assert_one_line_error(cli("monitor", "run", "nosuch", "--baseline",
                                  str(tmp_path / "empty"), workspace=tmp_path / "ws"),
                          "no endpoint named 'nosuch'")
    assert_one_line_error(run_cli("monitor", "run", str(tmp_path / "held.csv"), "--baseline",
                                  str(tmp_path / "empty"), "--start", "NOW-3 weeks",
                                  workspace=tmp_path / "ws"), "--start", "is not a time")
    assert not (tmp_path / "ws").exists()  # nothing written, no workspace left behind
    assert_one_line_error(cli("monitor", "baseline", str(tmp_path / "held.csv"),
                              workspace=tmp_path / "ws"), "-o DIR")
    assert_one_line_error(cli("monitor", "run", str(tmp_path / "held.csv"), "--baseline",
                              str(tmp_path / "empty"), "--method", "Fancy",
                              workspace=tmp_path / "ws"), "Robust or Simple")
