"""The pieces a remote executor relies on, without a cluster: the column store held in
memory (what the Ray executor puts in its object store) reads exactly as the files do,
and a trial's files that the job cannot see make the trial Failed, saying why."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.execution import TrialResult
from tabpilot.execution.columnar import ColumnStore, LoadedColumns, write_columns
from tabpilot.execution.handback import receive, run_there

sys.path.insert(0, str(Path(__file__).parent))
from test_columnar import mixed_frame, mixed_schema  # noqa: E402  (the same mixed table)


def test_the_loaded_store_reads_every_kind_of_column_as_the_files_do(tmp_path: Path) -> None:
    df = mixed_frame(120)  # numbers, categories, text, dates, mixed objects
    folder = write_columns(df, mixed_schema(df), tmp_path / "table")
    on_disk = ColumnStore(folder)
    loaded = on_disk.loaded()
    assert isinstance(loaded, LoadedColumns)
    assert loaded.nbytes > 0 and loaded.n_rows == len(df)
    assert {c.storage for c in loaded.columns} >= {"numeric", "codes", "strings", "pickle"}
    # it travels as plain arrays (what an object store shares) and reads the same after
    travelled = pickle.loads(pickle.dumps(loaded, protocol=5))
    for rows in (None, np.array([4, 0, 17, 17, 119])):
        pd.testing.assert_frame_equal(travelled.frame(rows), on_disk.frame(rows))


def test_a_completed_trial_whose_model_the_job_cannot_see_is_failed_with_the_host(
        tmp_path: Path) -> None:
    model = tmp_path / "cand" / "model"
    result = TrialResult("lightgbm-000", "Completed", objective=0.9, artifact_dir=str(model))
    # without an artifact store: the files stay where the trial wrote them, host noted
    sent = run_there(None, None, lambda task: result)  # type: ignore[arg-type]
    assert sent.details["host"]
    lost = receive(sent)
    assert lost.status == "Failed" and lost.objective is None and lost.artifact_dir is None
    assert sent.details["host"] in (lost.failure_reason or "")
    assert "shared filesystem" in (lost.failure_reason or "")
    model.mkdir(parents=True)
    (model / "manifest.json").write_text("{}")
    assert receive(sent) is sent  # visible: unchanged
    failed = TrialResult("x-001", "Failed", failure_reason="boom")
    assert receive(failed) is failed


def test_ray_s_errors_become_one_line_reasons_that_name_the_cause() -> None:
    exceptions = pytest.importorskip("ray.exceptions", reason="the ray extra is not installed")
    from tabpilot.execution.onray import failure_reason

    crashed = failure_reason(exceptions.WorkerCrashedError())
    assert crashed.startswith("the Ray worker running the trial died")
    assert "worker died unexpectedly" in crashed  # Ray's own first line kept
    assert failure_reason(exceptions.NodeDiedError("node 1 died")) == \
        "the Ray node running the trial died (node 1 died)"
    assert "out of memory" in failure_reason(exceptions.OutOfMemoryError("low on memory"))
    assert failure_reason(RuntimeError("gcs gone")) == "Ray error RuntimeError (gcs gone)"
    assert all("\n" not in r for r in (crashed,))
