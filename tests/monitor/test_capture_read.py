"""The fast paths of reading a window and checking it give what the careful ones give:
header-less CSV bodies parsed in bulk, numeric text read as floats once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.monitor import checks
from tabpilot.monitor.baseline import write_baseline
from tabpilot.monitor.capture import _rows, read_capture, read_predictions
from tabpilot.serving.capture import CaptureWriter

BODIES = ['1,x\n2,\n', '3,"y, z"\n"4",""\n', '5,"two\nlines"\n6, \n', "\n7,w\r\n"]


def _careful(bodies: list[str], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([row for i, body in enumerate(bodies)
                         for row in _rows({"data": body}, columns, str(i))], dtype=object)


@pytest.mark.parametrize("bodies", [BODIES, ["1,x\n", "2\n", "3,y,9\n"]],
                         ids=["one width", "ragged rows"])
def test_bulk_csv_reads_as_the_request_by_request_reader(tmp_path: Path, bodies) -> None:
    writer = CaptureWriter(tmp_path / "capture", "ep", 100.0)
    for body in bodies:
        writer.write(body.encode(), "text/csv", b"0\n", "text/csv")
    frame, requests = read_capture(tmp_path / "capture" / "ep", ["a", "b"])
    assert requests == len(bodies)
    expected = _careful(bodies, ["a", "b"])
    assert frame.to_dict("list") == expected.to_dict("list")
    if bodies is BODIES:
        assert frame["b"].tolist() == ["x", None, "y, z", None, "two\nlines", None, "w"]


def test_responses_are_one_row_per_prediction_with_row_ids(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path / "capture", "ep", 100.0)
    writer.write(b"1\n2\n", "text/csv", b"yes,0.9\nno,0.8\n", "text/csv", inference_id="two")
    writer.write(b"1\n", "text/csv", json.dumps({"predictions": [
        {"predicted_label": "yes", "probability": 0.7}]}).encode(), "application/json",
        inference_id="one")
    answers, requests = read_predictions(tmp_path / "capture" / "ep")
    assert requests == 2
    assert answers["inference_id"].tolist() == ["two:0", "two:1", "one"]
    assert answers["0"].tolist()[:2] == ["yes", "no"]
    assert answers["predicted_label"].tolist()[2] == "yes"


def test_numeric_text_read_once_checks_as_text_does(mixed, tmp_path: Path, monkeypatch) -> None:
    train, held = mixed
    baseline = write_baseline(train, tmp_path / "base")
    window = held.astype(str).replace("nan", "").astype(object)  # as a CSV body gives it
    window.loc[window.index[::9], "age"] = " "  # blanks: missing
    window.loc[window.index[::50], "income"] = "n/a"  # text: income stays text
    window.loc[window.index[::7], "score"] = "2.5e0"
    expected = {str(f["name"]): f for f in baseline.constraints["features"]}
    read = checks._numbers_read_once(window, expected)
    assert (read["age"].dtype, read["score"].dtype, read["income"].dtype) == \
        (np.float64, np.float64, object)  # a column with text that is no number stays text
    fast = checks.evaluate(baseline, window)
    monkeypatch.setattr(checks, "_numbers_read_once", lambda w, expected: w)
    slow = checks.evaluate(baseline, window)
    assert fast.violations == slow.violations
    assert json.dumps(fast.statistics, sort_keys=True) == json.dumps(slow.statistics,
                                                                     sort_keys=True)
    assert {k: v["distance"] for k, v in fast.drift.items()} == \
        {k: v["distance"] for k, v in slow.drift.items()}
    assert window["age"].dtype == object and not np.issubdtype(window["age"].dtype, np.floating)
