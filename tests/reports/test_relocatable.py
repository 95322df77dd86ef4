"""Job folders that rerun anywhere: CandidateDefinitions.ipynb and exported scripts find
the job folder and its data from their own place, after the folder was copied elsewhere
and the original data went away; the job keeps its data without pickles."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient

import tabpilot
from tabpilot.data.read import read_table
from tabpilot.errors import DataError, NotFoundError
from tabpilot.jobs import resume
from tabpilot.reports import candidate, datafiles, definitions
from tabpilot.reports.notebooks import EXPLORATION

RESULT = re.compile(r"^(?P<name>[\w-]+): validation (?P<metric>\w+) = (?P<value>\S+), "
                    r"leaderboard (?P<board>\S+), difference \S+ \(tolerance (?P<tol>\S+)\): "
                    r"(?P<verdict>\w+)$", re.MULTILINE)


def _table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                       "plan": rng.choice(["basic", "plus", "pro"], n)})
    df["y"] = np.where(df["a"] - df["b"] + (df["plan"] == "pro") + rng.normal(0, 0.5, n) > 0,
                       "yes", "no")
    return df


def _fit(data: str | pd.DataFrame, name: str, ws: Path) -> tabpilot.AutoML:
    return tabpilot.AutoML(target="y", time_limit=12, max_candidates=3, n_workers=2,
                           algorithms=["lightgbm", "linear"], name=name,
                           workspace=ws).fit(data)


@pytest.fixture(scope="module")
def frame_job(tmp_path_factory) -> tuple[tabpilot.AutoML, Path]:
    """A job trained on a DataFrame: its folder holds the only copy of the data."""
    ws = tmp_path_factory.mktemp("reloc-frame")
    return _fit(_table(), "reloc-frame", ws), ws / "jobs" / "reloc-frame"


@pytest.fixture(scope="module")
def file_job(tmp_path_factory) -> tuple[tabpilot.AutoML, Path, Path]:
    """A job trained on a small CSV file (so its folder keeps a copy of it)."""
    root = tmp_path_factory.mktemp("reloc-file")
    path = root / "data" / "train.csv"
    path.parent.mkdir()
    _table(seed=1).to_csv(path, index=False)
    return _fit(str(path), "reloc-file", root / "ws"), root / "ws" / "jobs" / "reloc-file", path


@contextmanager
def _hidden(*paths: Path) -> Iterator[None]:
    """The paths moved away meanwhile (the original job folder, the original data)."""
    away = [p.with_name(p.name + ".away") for p in paths]
    for p, a in zip(paths, away, strict=True):
        p.rename(a)
    try:
        yield
    finally:
        for p, a in zip(paths, away, strict=True):
            a.rename(p)


def _verdicts(printed: str) -> dict[str, tuple[str, float]]:
    return {m["name"]: (m["verdict"], float(m["value"])) for m in RESULT.finditer(printed)}


# -- the notebook and the script, relocated -------------------------------------------------
def test_a_copied_job_folder_runs_its_notebook_from_another_working_directory(
        frame_job, tmp_path: Path) -> None:
    """The folder copied as the SageMaker facade publishes it (S3OutputPath/<job>/), the
    original gone, the kernel started in the copy's parent folder."""
    job, job_dir = frame_job
    assert (job_dir / datafiles.DATA_COPY).is_file()
    assert not list(job_dir.glob("*.pkl"))  # no pickle of the data nor of the sample
    copy = tmp_path / "output" / job_dir.name
    shutil.copytree(job_dir, copy)
    nb = nbformat.read(copy / definitions.NOTEBOOK, as_version=4)
    exploration = nbformat.read(copy / EXPLORATION, as_version=4)
    with _hidden(job_dir):
        for notebook in (nb, exploration):
            NotebookClient(notebook, timeout=300, kernel_name="python3",
                           resources={"metadata": {"path": str(copy.parent)}}).execute()
    assert "300 rows" in exploration.cells[1].outputs[0]["text"]
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert f"job folder {copy}; training data {copy / datafiles.DATA_COPY}" in printed, printed
    board = job.leaderboard()
    found = _verdicts(printed)
    assert set(found) == set(board["candidate"]), printed
    for _, row in board.iterrows():
        verdict, value = found[row["candidate"]]
        assert verdict == "reproduced" and abs(value - row["objective"]) <= 1e-4, printed


def test_an_exported_script_runs_beside_a_copy_of_its_job_from_another_directory(
        file_job, tmp_path: Path) -> None:
    """`tabpilot export -o` into the workspace; the script and the job folder copied to
    another place together; the CSV and the original folder gone: the script reads the
    job folder's copy of the CSV."""
    job, job_dir, data = file_job
    ws = job_dir.parent.parent
    exported = ws / "scripts" / "best.py"
    done = subprocess.run([sys.executable, "-m", "tabpilot", "export", job.name, "--rerun",
                           "-o", str(exported), "--workspace", str(ws)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    moved = tmp_path / "moved"
    shutil.copytree(ws / "scripts", moved / "scripts")
    shutil.copytree(job_dir, moved / "jobs" / job_dir.name)
    other = tmp_path / "somewhere-else"
    other.mkdir()
    with _hidden(job_dir, data):
        ran = subprocess.run([sys.executable, str(moved / "scripts" / "best.py")],
                             capture_output=True, text=True, timeout=300, cwd=other)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    copy = moved / "jobs" / job_dir.name
    assert f"job folder {copy}; training data {copy / 'training_data.csv'}" in ran.stdout
    best = job.describe()["BestCandidate"]
    verdict, value = _verdicts(ran.stdout)[best["CandidateName"]]
    assert verdict == "reproduced", ran.stdout
    assert abs(value - best["FinalAutoMLJobObjectiveMetric"]["Value"]) <= 1e-4


def test_data_gone_without_a_copy_is_one_line_naming_the_way_to_point_elsewhere(
        file_job, tmp_path: Path) -> None:
    """The CSV removed and the job folder's copy too: one line, exit status 2; then
    TABPILOT_DATA, as the line says, points the script at the table's new place."""
    job, job_dir, data = file_job
    copy = tmp_path / "copy" / job_dir.name
    shutil.copytree(job_dir, copy)
    (copy / "training_data.csv").unlink()
    script = copy / "best.py"
    script.write_text(definitions.script(copy, job.describe()["BestCandidate"]["CandidateName"],
                                         script))
    other = tmp_path / "cwd"
    other.mkdir()
    with _hidden(job_dir, data):
        ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             timeout=120, cwd=other)
        lines = [line for line in ran.stderr.splitlines() if line.strip()]
        assert ran.returncode == 2 and len(lines) == 1, ran.stderr
        assert lines[0].startswith("error: the training data of job 'reloc-file' is not found")
        assert str(data) in lines[0] and "TABPILOT_DATA" in lines[0]
        moved = data.with_name(data.name + ".away")
        again = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                               timeout=300, cwd=other,
                               env={**os.environ, "TABPILOT_DATA": str(moved)})
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"training data {moved}" in again.stdout
    assert {v for v, _ in _verdicts(again.stdout).values()} == {"reproduced"}


# -- what the job keeps ---------------------------------------------------------------------
def test_a_file_is_copied_up_to_the_size_limit_and_referenced_by_its_path(
        tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "sales.2024.csv"
    _table(20).to_csv(data, index=False)
    kept, skipped = tmp_path / "kept", tmp_path / "skipped"
    kept.mkdir()
    skipped.mkdir()
    record = definitions.record_inputs(str(data), None, None, kept)
    assert record["input"] == str(data.resolve()) and not record["input_is_copy"]
    assert record["copies"] == {"input": "training_data.csv"}
    assert (kept / "training_data.csv").read_bytes() == data.read_bytes()
    monkeypatch.setattr(datafiles, "COPY_MAX_BYTES", data.stat().st_size - 1)
    record = definitions.record_inputs(str(data), None, None, skipped)
    assert record["copies"] == {} and not list(skipped.iterdir())
    data.unlink()
    with pytest.raises(DataError, match="holds no copy of it") as info:
        datafiles.job_inputs(skipped, record)
    assert "TABPILOT_DATA" in str(info.value) and "\n" not in str(info.value)
    assert datafiles.job_inputs(kept, record | {"copies": {"input": "training_data.csv"}}
                                ).source == str(kept / "training_data.csv")


def test_a_dataframe_is_kept_as_parquet_and_mixed_columns_as_text(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "n": [1.5, None, 3.0, 4.0], "k": pd.Categorical(["a", "b", None, "a"]),
        "when": pd.to_datetime(["2024-01-01", "2024-02-01", None, "2024-03-01"]),
        "i": pd.array([1, None, 3, 4], dtype="Int64"), "y": ["p", "q", "p", "q"]},
        index=[10, 11, 12, 13])
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / datafiles.OLD_PICKLE).write_bytes(b"from an older tabpilot")
    record = definitions.record_inputs(frame, None, None, clean)
    assert record["input"] == "training_data.parquet" and record["input_is_copy"]
    assert "copy_note" not in record
    assert not (clean / datafiles.OLD_PICKLE).exists()  # no stale pickle left to be taken
    pd.testing.assert_frame_equal(read_table(str(clean / record["input"])), frame)

    mixed = frame.assign(m=[1, "two", 3.5, None])
    folder = tmp_path / "mixed"
    folder.mkdir()
    record = definitions.record_inputs(mixed, None, None, folder)
    assert record["input"] == "training_data.parquet" and "'m'" in record["copy_note"]
    back = read_table(str(folder / record["input"]))
    assert back["m"].tolist() == ["1", "two", "3.5", None]
    pd.testing.assert_frame_equal(back.drop(columns="m"), frame)
    assert datafiles.job_inputs(folder, record).note == record["copy_note"]


def test_resume_reads_the_parquet_copy_and_never_unpickles(tmp_path: Path) -> None:
    frame = _table(30)
    job_dir = tmp_path / "jobs" / "old"
    job_dir.mkdir(parents=True)
    record = definitions.record_inputs(frame, None, None, job_dir)
    row = SimpleNamespace(name="old", job_dir=str(job_dir))
    pd.testing.assert_frame_equal(resume._training_data(row, record), frame)

    marker = tmp_path / "unpickled"
    (job_dir / datafiles.OLD_PICKLE).write_bytes(pickle.dumps(_Marker(str(marker))))
    old = {"input": datafiles.OLD_PICKLE, "input_is_copy": True, "validation_data": None,
           "feature_types": None}  # job.json of tabpilot before 0.3
    with pytest.raises(DataError, match=r"as a pickle .* pass the table again with --data"):
        resume._training_data(row, old)
    assert not marker.exists()


class _Marker:
    """A pickle that creates a file when loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_the_validation_sample_is_kept_without_pickle(tmp_path: Path) -> None:
    X = _table(50).drop(columns="y").assign(mixed=[1, "a"] * 25)
    y = np.arange(50) % 2
    candidate.save_validation_data(tmp_path, X, y, np.arange(10, 50), seed=0)
    assert not list(tmp_path.glob("*.pkl"))
    sample, target = candidate.load_validation_sample(tmp_path)
    assert len(sample) == len(target) == 40
    assert sample["mixed"].tolist() == [str(v) for v in X["mixed"].iloc[10:50]]
    pd.testing.assert_frame_equal(sample.drop(columns="mixed"),
                                  X.drop(columns="mixed").iloc[10:50].reset_index(drop=True))
    np.testing.assert_array_equal(target, y[10:50])

    old = tmp_path / "old"
    old.mkdir()
    (old / candidate.OLD_SAMPLE).write_bytes(b"\x80\x05not loaded")
    with pytest.raises(NotFoundError, match="as a pickle, which tabpilot does not load"):
        candidate.load_validation_sample(old)


# -- the job folder, found from the code's place ----------------------------------------------
def _fake_job(folder: Path, name: str | None) -> Path:
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps({"request": {"name": name}}))
    return folder


def test_the_job_folder_is_found_from_the_notebook_the_cwd_or_the_workspace(
        tmp_path: Path, monkeypatch) -> None:
    job = _fake_job(tmp_path / "ws" / "jobs" / "j", "j")
    _fake_job(tmp_path / "ws" / "jobs" / "other", "other")
    (job / "candidates").mkdir()
    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    for cwd, near in [(job / "candidates", []),          # inside the job folder
                      (tmp_path / "ws", []),             # the workspace: jobs/<job>
                      (tmp_path / "ws" / "jobs", []),    # a folder of job folders
                      (unrelated, [job / definitions.NOTEBOOK]),  # VS Code names the file
                      (tmp_path / "ws" / "jobs" / "other", [])]:  # another job: walk up
        monkeypatch.chdir(cwd)
        assert datafiles.find_job_dir("j", near=near) == job.resolve(), cwd
    monkeypatch.chdir(unrelated)
    assert datafiles.find_job_dir("j", near=[None], recorded=str(job)) == job
    with pytest.raises(NotFoundError, match="TABPILOT_JOB_DIR"):
        datafiles.find_job_dir("j", recorded=str(tmp_path / "gone"))
    with pytest.raises(NotFoundError, match="is not the folder of job 'j'"):
        datafiles.find_job_dir("j", given=tmp_path / "ws" / "jobs" / "other")
    assert datafiles.find_job_dir("j", given=job) == job.resolve()
