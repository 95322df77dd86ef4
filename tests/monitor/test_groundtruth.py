"""Ground truth in Model Monitor's JSON lines: written from a table by
`tabpilot monitor ground-truth`, read back by id over hour folders, and bad input refused
with one line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from monitorlib import assert_one_line_error

from tabpilot.errors import DataError
from tabpilot.monitor.groundtruth import label_text, read_ground_truth
from tabpilot.serving.capture import CaptureWriter


def _endpoint(workspace: Path, name: str = "churn") -> None:
    """An endpoint known by its capture folder (what a real one's captures leave)."""
    CaptureWriter(workspace / "capture", name, 100.0).write(
        b"1,2\n", "text/csv", b"yes\n", "text/csv", inference_id="r0")


def test_a_table_becomes_model_monitors_ground_truth_files(tmp_path: Path, cli) -> None:
    _endpoint(tmp_path)
    pd.DataFrame({"id": ["r0", "r1", "r2:3", "r4"], "y": ["yes", "no", "1.0", 'a, "b"\nc']}
                 ).to_parquet(tmp_path / "labels.parquet")
    done = cli("monitor", "ground-truth", "churn", str(tmp_path / "labels.parquet"),
               "--id-column", "id", "--label-column", "y", "--json", workspace=tmp_path)
    assert done.returncode == 0, done.stderr
    written = Path(json.loads(done.stdout)["GroundTruth"])
    hour = written.relative_to(tmp_path / "ground-truth" / "churn").parts[:4]
    assert len(hour) == 4 and all(p.isdigit() for p in hour)  # YYYY/MM/DD/HH
    assert json.loads(done.stdout)["Records"] == 4
    lines = [json.loads(x) for x in written.read_text().splitlines()]
    assert lines[0] == {"groundTruthData": {"data": "yes", "encoding": "CSV"},
                        "eventMetadata": {"eventId": "r0"}, "eventVersion": "0"}
    assert not list(written.parent.glob("*.part"))
    assert read_ground_truth(tmp_path / "ground-truth" / "churn") == \
        {"r0": "yes", "r1": "no", "r2:3": "1", "r4": 'a, "b"\nc'}  # one label, quoted


def test_reading_by_window_later_labels_win_and_multi_row_records(tmp_path: Path) -> None:
    folder = tmp_path / "gt"

    def put(hour: str, name: str, *records: tuple[str, str]) -> None:
        path = folder / hour / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps({
            "groundTruthData": {"data": data, "encoding": "CSV"},
            "eventMetadata": {"eventId": event}, "eventVersion": "0"}) + "\n"
            for event, data in records))

    put("2026/12/01/10", "a.jsonl", ("x", "no"), ("batch", "yes\nno\n\"a,b\""))
    put("2026/12/03/10", "b.jsonl", ("x", "yes"), ("y", "3.0"))
    assert read_ground_truth(folder) == {"x": "yes", "y": "3", "batch:0": "yes",
                                         "batch:1": "no", "batch:2": "a,b"}
    late = read_ground_truth(folder, datetime(2026, 12, 2, tzinfo=UTC))
    assert late == {"x": "yes", "y": "3"}
    assert [label_text(v) for v in (1, 1.0, "1", True, "TRUE", " b ", 2.5)] == \
        ["1", "1", "1", "true", "true", "b", "2.5"]


@pytest.mark.parametrize("line, words", [
    ("not json", ["line 2", "not JSON"]),
    (json.dumps({"groundTruthData": {"data": "yes"}}), ["line 2", "eventMetadata.eventId"]),
    (json.dumps({"groundTruthData": {"data": ""}, "eventMetadata": {"eventId": "e"}}),
     ["line 2", "label of 'e' is empty"]),
    (json.dumps({"groundTruthData": {"data": "y", "encoding": "BASE64"},
                 "eventMetadata": {"eventId": "e"}}), ["encoding 'BASE64'"]),
])
def test_a_bad_ground_truth_file_names_its_line(tmp_path: Path, line: str, words) -> None:
    path = tmp_path / "gt" / "2026" / "12" / "03" / "10" / "bad.jsonl"
    path.parent.mkdir(parents=True)
    good = json.dumps({"groundTruthData": {"data": "yes", "encoding": "CSV"},
                       "eventMetadata": {"eventId": "ok"}, "eventVersion": "0"})
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(DataError) as err:
        read_ground_truth(tmp_path / "gt")
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message


def test_bad_tables_and_names_are_one_error_line(tmp_path: Path, cli) -> None:
    _endpoint(tmp_path)
    table = tmp_path / "labels.csv"

    def run(frame: pd.DataFrame | None, *args: str):
        if frame is not None:
            frame.to_csv(table, index=False)
        return cli("monitor", "ground-truth", *args, workspace=tmp_path)

    ok = ["--id-column", "id", "--label-column", "y"]
    assert_one_line_error(run(pd.DataFrame({"id": ["a"], "label": ["x"]}), "churn",
                              str(table), *ok), "--label-column 'y'", "id, label")
    assert_one_line_error(run(pd.DataFrame({"id": ["a", "a"], "y": ["x", "z"]}), "churn",
                              str(table), *ok), "'a' appears 2 times")
    assert_one_line_error(run(pd.DataFrame({"id": ["a", "b", None], "y": ["x", None, "z"]}),
                              "churn", str(table), *ok), "row(s) 4 have no inference id")
    assert_one_line_error(run(pd.DataFrame({"id": ["a", "b"], "y": ["x", None]}), "churn",
                              str(table), *ok), "row(s) 3 have no label")
    assert_one_line_error(run(None, "nosuch", str(table), *ok), "no endpoint named 'nosuch'")
    assert_one_line_error(run(None, "churn", str(tmp_path / "absent.csv"), *ok),
                          "does not exist")
    assert not (tmp_path / "ground-truth").exists()  # nothing written by a refusal
