"""Names become path parts: checked before use, in the Python API too; values in messages
are plain and short; a refused job leaves no workspace behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot import names
from tabpilot.automl import AutoML, load_model
from tabpilot.errors import ConfigError, NotFoundError, TargetError, shown
from tabpilot.store import Store


@pytest.mark.parametrize("name", ["lightgbm-019", "random_forest-003", "extra_trees-011-full",
                                  "ensemble-001", "stack-002"])
def test_every_candidate_name_tabpilot_makes_is_valid(name: str) -> None:
    assert names.check(name, "candidate") == name


@pytest.mark.parametrize("kind", ["job", "candidate", "endpoint", "model"])
@pytest.mark.parametrize("name", ["..", "a/b", "../x", "a\\b", ".", "", "-a", "a b", "x" * 65])
def test_names_that_could_leave_their_folder_are_refused(kind: str, name: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{kind} name .* is invalid"):
        names.check(name, kind)


def test_underscores_are_for_candidates_only() -> None:
    assert names.is_valid("random_forest-003", "candidate")
    assert not names.is_valid("my_job", "job")


def test_shown_is_plain_and_short() -> None:
    assert shown(np.int64(0)) == "0"
    assert shown(np.float64(1.5)) == "1.5"
    assert shown(np.str_("yes")) == "'yes'"
    long = shown("x" * 10_000)
    assert len(long) == 100 and long.endswith("...")


def test_load_model_checks_names_before_they_become_paths(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    with pytest.raises(ConfigError, match=r"job name '\.\./x' is invalid.*model directory"):
        load_model("../x", workspace=ws)
    with pytest.raises(ConfigError, match=r"candidate name 'a/b' is invalid"):
        load_model("demo", candidate="a/b", workspace=ws)
    with pytest.raises(NotFoundError, match=r"folder without a packaged model"):
        load_model(tmp_path, workspace=ws)
    with pytest.raises(NotFoundError, match=r"no job named 'demo'"):
        load_model("demo", workspace=ws)
    with pytest.raises(ConfigError, match=r"job name 'a/b'"):
        AutoML.attach("a/b", ws)
    assert not ws.exists()


def test_a_store_looked_up_without_create_leaves_no_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    store = Store.for_workspace(ws, create=False)
    assert store.list_jobs() == [] and not store.job_exists("x")
    assert not ws.exists()
    Store.for_workspace(ws).create_job(
        name="j", status="Completed", secondary_status="Completed", target="y", input_uri="-",
        request={}, job_dir=str(ws / "jobs" / "j"))
    assert Store.for_workspace(ws, create=False).job_exists("j")  # an existing one is read


def test_a_refused_fit_creates_no_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    single = pd.DataFrame({"a": np.arange(30.0), "y": np.zeros(30, dtype=np.int64)})
    with pytest.raises(TargetError, match=r"single value \(0\)"):
        AutoML("y", workspace=ws, time_limit=5).fit(single)
    assert not ws.exists()
