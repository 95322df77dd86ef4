"""Reports written by the job itself: statuses, time share, partial failures, and
--generate-candidates-only."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient

import tabpilot
from tabpilot.config import JobRequest
from tabpilot.jobs import JobRunner
from tabpilot.jobs import status as st
from tabpilot.jobs.reporting import report_seconds, write_reports
from tabpilot.store import Store

FAST = ["lightgbm", "linear"]


class RecordingStore(Store):
    """The store, remembering every secondary status the job passed through."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.secondary: list[str] = []

    def update_job(self, name: str, **fields) -> None:
        if "secondary_status" in fields and (not self.secondary
                                             or self.secondary[-1] != fields["secondary_status"]):
            self.secondary.append(fields["secondary_status"])
        super().update_job(name, **fields)


def table(n: int, seed: int = 0, classes: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                       "plan": rng.choice(["basic", "plus", "pro"], n)})
    score = df["a"] - 0.7 * df["b"] + (df["plan"] == "pro") + 0.4 * rng.normal(size=n)
    if classes == 2:
        df["y"] = np.where(score > 0.3, "yes", "no")
    else:
        df["y"] = np.select([score < -0.5, score < 0.8], ["low", "mid"], "high")
    return df


def test_the_job_writes_explanations_then_insights_within_its_time_share(tmp_path: Path
                                                                          ) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    store = RecordingStore(f"sqlite:///{ws / 'tabpilot.db'}")
    request = JobRequest.build(target="y", time_limit=30, max_candidates=3, algorithms=FAST,
                               n_workers=2, name="reported")
    JobRunner(request, ws, store).run(table(400))
    seen = store.secondary
    assert seen.index(st.GENERATING_EXPLAINABILITY) + 1 == seen.index(
        st.GENERATING_MODEL_INSIGHTS), seen
    assert seen[-1] == st.MAX_CANDIDATES, seen

    job = tabpilot.AutoML.attach("reported", ws)
    desc = job.describe()
    assert desc["AutoMLJobStatus"] == st.COMPLETED and desc["PartialFailureReasons"] == []
    reports = desc["Reports"]
    # the budget the job gave its reports, not the seconds they took (those depend on the
    # machine's load); that the reports keep to a budget is tested below and in
    # tests/reports/test_explain_deadline.py
    assert 0 < reports["budget_seconds"] <= report_seconds(30)  # 10 % of the limit
    best = desc["BestCandidate"]
    assert best["CandidateName"] in [e["candidate"] for e in reports["explained"]]
    locations = best["CandidateProperties"]["CandidateArtifactLocations"]
    assert set(locations) == {"Explainability", "ModelInsights"}
    explained = json.loads(Path(locations["Explainability"]).read_text())
    assert {f["feature"] for f in explained["feature_importance"]["importance"]} == {
        "a", "b", "plan"}
    insights = json.loads(Path(locations["ModelInsights"]).with_suffix(".json").read_text())
    assert insights["feature_importance"] == explained["feature_importance"]
    assert set(desc["AutoMLJobArtifacts"]) == {"DataExplorationNotebookLocation",
                                               "CandidateDefinitionNotebookLocation"}
    # every kept candidate is written or skipped with a reason, best first
    done = {e["candidate"] for e in reports["explained"]}
    for c in job.candidates():
        if c["ModelLocation"] and c["CandidateName"] not in done:
            assert any(s["candidate"] == c["CandidateName"] and "time" in s["reason"]
                       for s in reports["skipped"]), reports


def test_reports_that_do_not_fit_in_the_time_left_are_skipped_with_a_reason(tmp_path: Path
                                                                            ) -> None:
    job = tabpilot.AutoML(target="y", time_limit=20, max_candidates=2, algorithms=FAST,
                          n_workers=2, name="skips", workspace=tmp_path).fit(table(300))
    job_dir = Path(job.describe()["JobDirectory"])
    names = list(job.leaderboard()["candidate"])
    outcome = write_reports(job_dir, names, "F1", time.time() + 0.05, lambda s: None,
                            lambda: False, "test budget")
    assert outcome.failures == [] and not outcome.stopped
    skipped = {(s["candidate"], s["report"]) for s in outcome.summary["skipped"]}
    assert {(n, r) for n in names for r in ("Explainability", "ModelInsights")} <= skipped
    assert all("test budget" in s["reason"] or "not executed" in s["reason"]
               for s in outcome.summary["skipped"])


def test_a_failing_report_is_a_partial_failure_that_keeps_the_leaderboard(tmp_path: Path
                                                                         ) -> None:
    """Directories where two report files must go: writing them fails for real."""
    job_dir = tmp_path / "jobs" / "partial"
    (job_dir / "candidates" / "lightgbm-000" / "explanations.json").mkdir(parents=True)
    (job_dir / "candidates" / "linear-001" / "insights.html").mkdir(parents=True)
    data = table(400, seed=1)
    # the job ends at its second candidate; the long limit gives the reports a share
    # (a tenth of it) that a loaded machine does not use up
    job = tabpilot.AutoML(target="y", time_limit=300, max_candidates=2, algorithms=FAST,
                          n_workers=2, ensemble=False, stacking="off", name="partial",
                          workspace=tmp_path)
    job.fit(data)
    desc = job.describe()
    assert desc["AutoMLJobStatus"] == st.COMPLETED, desc["FailureReason"]
    assert desc["AutoMLJobSecondaryStatus"] == st.EXPLAINABILITY_ERROR
    assert desc["FailureReason"] is None
    messages = [p["PartialFailureMessage"] for p in desc["PartialFailureReasons"]]
    assert len(messages) == 2, messages
    assert any("Explainability of lightgbm-000" in m for m in messages)
    assert any("ModelInsights of linear-001" in m for m in messages)
    board = job.leaderboard()
    assert sorted(board["candidate"]) == ["lightgbm-000", "linear-001"]
    assert pd.read_csv(job_dir / "leaderboard.csv")["candidate"].tolist() == \
        board["candidate"].tolist()
    assert len(job.best_model().predict(data.drop(columns="y").head(5))) == 5
    # the other report of each candidate was still written
    by_name = {c["CandidateName"]: c for c in job.candidates()}
    locations = {n: c["CandidateProperties"]["CandidateArtifactLocations"]
                 for n, c in by_name.items()}
    assert set(locations["lightgbm-000"]) == {"ModelInsights"}
    assert set(locations["linear-001"]) == {"Explainability"}


@pytest.mark.slow  # 18 s: runs the generated notebook
def test_generate_candidates_only_trains_nothing_and_its_notebook_trains_the_portfolio(
        tmp_path: Path) -> None:
    data = tmp_path / "classes.csv"
    table(150, seed=2, classes=3).to_csv(data, index=False)
    ws = tmp_path / "ws"
    done = subprocess.run([sys.executable, "-m", "tabpilot", "run", str(data), "--target", "y",
                           "--generate-candidates-only", "--folds", "2", "--time-limit", "60",
                           "--name", "gen", "--workspace", str(ws), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    desc = json.loads(done.stdout)
    assert desc["AutoMLJobStatus"] == st.COMPLETED
    assert desc["AutoMLJobSecondaryStatus"] == st.CANDIDATE_DEFINITIONS_GENERATED
    assert desc["BestCandidate"] is None and desc["FailureReason"] is None
    assert sum(desc["CandidateCounts"].values()) == 0
    assert Store.for_workspace(ws).list_candidates("gen") == []
    job_dir = Path(desc["JobDirectory"])
    assert not (job_dir / "candidates").exists() and not (job_dir / "leaderboard.csv").exists()
    artifacts = desc["AutoMLJobArtifacts"]
    exploration = nbformat.read(artifacts["DataExplorationNotebookLocation"], as_version=4)
    assert any(c.get("outputs") for c in exploration.cells if c.cell_type == "code")
    notebook = Path(artifacts["CandidateDefinitionNotebookLocation"])
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []) if o.get("output_type") == "stream")
    scored = dict(re.findall(r"^([\w-]+): validation Accuracy = (\S+)$", printed, re.MULTILINE))
    assert {n.split("-")[0] for n in scored} == {"lightgbm", "xgboost", "catboost",
                                                 "extra_trees", "linear", "random_forest",
                                                 "mlp"}, printed
    assert all(0.5 < float(v) <= 1.0 for v in scored.values()), scored
