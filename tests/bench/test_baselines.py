"""bench/baselines: the other systems' runs kept in git for the budgets anchors.md lacks,
shown by a later sweep in place of running them again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.common import Table

from bench import automl, common

ANCHORS = """# Anchors

## Budget 60 s

| table | task | metric | lightgbm | flaml | autogluon | autogluon:best_quality \
| fit s (flaml / autogluon) | row ms (flaml / autogluon) |
|---|---|---|---|---|---|---|---|---|
| adult | binary | AUC ↑ | 0.9290 | 0.9262 | 0.9304 | 0.9298 | 68 / 61 | 28.4 / 38.1 |
"""


def run(system: str, score: float, status: str = "ok") -> dict:
    return {"system": system, "source": "run", "status": status, "score": score,
            "python": "/a/venv/bin/python", "fit_seconds": 250.0, "row_ms_p50": 40.0,
            "versions": {system: "1.0"}}


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(common, "BASELINES_DIR", tmp_path / "baselines")
    (tmp_path / "anchors.md").write_text(ANCHORS)
    return tmp_path


def test_only_the_other_systems_successful_runs_are_kept_and_a_rerun_replaces(kept: Path
                                                                              ) -> None:
    done = {"adult": {"tabpilot": run("tabpilot", 0.931), "autogluon": run("autogluon", 0.9311),
                      "flaml": run("flaml", 0.0, status="error")},
            "titanic": {"autogluon": {**run("autogluon", 0.85), "source": automl.RECORDED}}}
    path = automl.keep_baselines(done, 300)
    assert path == kept / "baselines" / "automl-300s.json"
    saved = json.loads(path.read_text())
    assert list(saved) == ["adult"] and list(saved["adult"]) == ["autogluon"]
    assert saved["adult"]["autogluon"]["score"] == 0.9311
    assert not {"source", "python"} & set(saved["adult"]["autogluon"])  # this machine's
    assert saved["adult"]["autogluon"]["measured"].startswith("20")
    # a later sweep of another system adds to the file; the same system run again replaces
    automl.keep_baselines({"adult": {"flaml": run("flaml", 0.928),
                                     "autogluon": run("autogluon", 0.9322)}}, 300)
    saved = json.loads(path.read_text())
    assert saved["adult"]["flaml"]["score"] == 0.928
    assert saved["adult"]["autogluon"]["score"] == 0.9322
    assert not list(path.parent.glob("*.part"))


def test_a_budget_anchors_md_lacks_shows_the_kept_run_marked_as_not_run_here(kept: Path
                                                                             ) -> None:
    automl.keep_baselines({"adult": {"autogluon": run("autogluon", 0.9311)}}, 300)
    refs = common.references(kept, 300)
    rec = automl.recorded("autogluon", refs["adult"], "not installed")
    assert rec["source"] == automl.BASELINES and rec["score"] == 0.9311
    assert rec["fit_seconds"] == 250.0 and rec["row_ms_p50"] == 40.0
    missing = automl.recorded("flaml", refs["adult"], "not installed")
    assert missing["status"] == "error" and missing["source"] == automl.RECORDED
    table = Table("adult", "adult.csv", "binary", "income")
    row = automl.table_row(table, {"autogluon": rec, "flaml": missing},
                           ["autogluon", "flaml"])
    assert row[3] == "**0.9311†**" and row[4] == "–"
    assert row[5] == "250† / –" and row[6] == "40.0† / –"


def test_anchors_md_keeps_precedence_at_its_own_budget(kept: Path) -> None:
    automl.keep_baselines({"adult": {"autogluon": run("autogluon", 0.95)}}, 60)
    refs = common.references(kept, 60)
    rec = automl.recorded("autogluon", refs["adult"], "--recorded")
    assert rec["source"] == automl.RECORDED and rec["score"] == 0.9304
    assert common.references(kept, 120) == {}
