"""CandidateDefinitions.ipynb and `tabpilot export`: the code reproduces the leaderboard."""

from __future__ import annotations

import json
import re
import shutil
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
from tabpilot.data.prepare import prepare
from tabpilot.data.split import make_split
from tabpilot.execution.base import TrialContext, TrialTask
from tabpilot.execution.trial import VALIDATION_PREDICTIONS, run_trial
from tabpilot.metrics import METRICS, score
from tabpilot.reports import definitions
from tabpilot.reports.candidate import VALIDATION_TARGET

RESULT = re.compile(r"^(?P<name>[\w-]+): validation (?P<metric>\w+) = (?P<value>\S+), "
                    r"leaderboard (?P<board>\S+), difference (?P<diff>\S+) \(tolerance "
                    r"(?P<tol>\S+)\): (?P<verdict>\w+)$", re.MULTILINE)
WORDS = ["great", "awful", "slow", "fast", "friendly", "rude", "cheap", "broken", "lovely",
         "late", "the", "service", "was", "really", "quite", "delivery"]


def mixed_table(n: int, task: str = "binary", seed: int = 0) -> pd.DataFrame:
    """Numeric, categorical (with missing values), free-text and date columns."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro", None], n, p=[0.4, 0.3, 0.2, 0.1])
    review = [" ".join(rng.choice(WORDS, 6)) for _ in range(n)]
    df = pd.DataFrame({
        "amount": rng.gamma(2.0, 50.0, n).round(2), "noise": rng.normal(size=n),
        "plan": plan, "review": review,
        "signup": (pd.Timestamp("2022-01-01")
                   + pd.to_timedelta(rng.integers(0, 700, n), unit="D")).strftime("%Y-%m-%d"),
    })
    score = (df["amount"] > 100) + (df["plan"] == "pro") + df["review"].str.contains(
        "great").astype(float) + rng.normal(0, 0.5, n)
    if task == "regression":
        df["y"] = score * 10
    elif task == "multiclass":
        df["y"] = np.select([score < 0.5, score < 1.5], ["low", "mid"], "high")
    else:
        df["y"] = np.where(score > 1.0, "keep", "churn")
    return df


def execute(path: Path, timeout: int = 300) -> str:
    """Run a notebook top to bottom in its folder; return everything it printed."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")


@pytest.fixture(scope="module")
def kfold_job(tmp_path_factory):
    """Every algorithm family, bagged over 2 folds, on mixed column kinds. The job ends at
    its seventh candidate; its limit only keeps a busy machine from cutting a family's
    trial short (a quarter of it per trial)."""
    ws = tmp_path_factory.mktemp("definitions")
    job = tabpilot.AutoML(target="y", time_limit=120, max_candidates=7, n_folds=2,
                          metric="LogLoss", n_workers=2, name="defs", workspace=ws)
    job.fit(mixed_table(240))
    return job, ws / "jobs" / "defs"


def test_the_notebook_reproduces_every_candidate_of_the_leaderboard(kfold_job) -> None:
    job, job_dir = kfold_job
    board = job.leaderboard()
    families = {c["Algorithm"] for c in job.candidates()}
    assert {"LightGBM", "XGBoost", "CatBoost", "RandomForest", "ExtraTrees", "Linear",
            "MLP"} <= families
    printed = execute(job_dir / definitions.NOTEBOOK)
    found = {m["name"]: m for m in RESULT.finditer(printed)}
    assert set(found) == set(board["candidate"]), printed
    for _, row in board.iterrows():
        m = found[row["candidate"]]
        assert m["verdict"] == "reproduced", printed
        assert abs(float(m["value"]) - row["objective"]) <= float(m["tol"])
        assert float(m["tol"]) <= 1e-4


def test_the_notebook_spells_out_each_algorithm_and_its_trees(kfold_job) -> None:
    job, job_dir = kfold_job
    nb = nbformat.read(job_dir / definitions.NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for cls in ("lightgbm.LGBMClassifier(", "xgboost.XGBClassifier(",
                "catboost.CatBoostClassifier(", "sklearn.ensemble.RandomForestClassifier(",
                "sklearn.ensemble.ExtraTreesClassifier(",
                "sklearn.linear_model.LogisticRegression(",
                "sklearn.neural_network.MLPClassifier(", "TabularEncoder("):
        assert cls in code
    assert "min_child_samples=" in code and "reg_alpha=" in code  # LightGBM's defaults too
    assert "n_rounds_per_fold = [" in code and "n_trees_per_fold = [" in code
    headings = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown"]
    assert sum(h.startswith("## ") for h in headings) == len(job.leaderboard()) + 2


def test_an_ensemble_reruns_its_members_and_combines_them(kfold_job, tmp_path: Path) -> None:
    """The ensemble's code: its members' sections, then their weighted average, scored as
    the job scores an ensemble (on the members' saved validation predictions)."""
    job, job_dir = kfold_job
    copy = tmp_path / "jobs" / "defs"
    shutil.copytree(job_dir, copy)
    saved = json.loads((copy / definitions.DEFINITIONS).read_text())
    members = {"xgboost-001": 0.6, "linear-004": 0.4}
    pred = sum(w * np.load(copy / "candidates" / m / VALIDATION_PREDICTIONS).astype(np.float64)
               for m, w in members.items())
    objective = score(METRICS["LogLoss"], np.load(copy / VALIDATION_TARGET), pred)
    saved["candidates"].append({"name": "ensemble-100", "family": "ensemble",
                                "params": {"members": members}, "rank": 1,
                                "objective": objective, "source": "ensemble"})
    (copy / definitions.DEFINITIONS).write_text(json.dumps(saved))
    text = definitions.script(copy, "ensemble-100")
    assert text.count("model.fit(") == 2  # the two members only
    ran = subprocess.run([sys.executable, "-c", text], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    verdicts = {m["name"]: m["verdict"] for m in RESULT.finditer(ran.stdout)}
    assert verdicts == {"xgboost-001": "reproduced", "linear-004": "reproduced",
                        "ensemble-100": "reproduced"}, ran.stdout


def test_export_of_an_unknown_candidate_is_a_one_line_error(kfold_job) -> None:
    job, _ = kfold_job
    done = subprocess.run([sys.executable, "-m", "tabpilot", "export", "defs", "--candidate",
                           "nope-001", "--workspace", str(job.workspace)],
                          capture_output=True, text=True, timeout=60)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error:") and "nope-001" in lines[0]
    assert "lightgbm-000" in lines[0]  # the candidates it could export


@pytest.mark.slow  # 14 s: a job of its own
def test_weighted_regression_on_a_holdout_with_a_refit(tmp_path: Path) -> None:
    """The refit best candidate's code reproduces the holdout score it was ranked by."""
    table = mixed_table(400, "regression", seed=1)
    table["w"] = np.random.default_rng(2).uniform(0.5, 2.0, len(table))
    path = tmp_path / "train.csv"
    table.to_csv(path, index=False)
    job = tabpilot.AutoML(target="y", time_limit=40, max_candidates=3, n_folds=1,
                          sample_weight="w", algorithms=["lightgbm", "xgboost"], n_workers=2,
                          name="weighted", workspace=tmp_path / "ws").fit(str(path))
    desc = job.describe()
    assert desc["BestCandidate"]["TrainedOn"] == "train+holdout"
    script = tmp_path / "best.py"
    done = subprocess.run([sys.executable, "-m", "tabpilot", "export", job.name, "-o",
                           str(script), "--workspace", str(job.workspace)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    text = script.read_text()
    assert "sample_weight=weights[train]" in text and "retrained on every training row" in text
    ran = subprocess.run([sys.executable, str(script), "train", str(path)], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    verdicts = {m["name"]: m["verdict"] for m in RESULT.finditer(ran.stdout)}
    assert verdicts == {desc["BestCandidate"]["CandidateName"]: "reproduced"}, ran.stdout


def test_fits_cut_short_by_the_deadline_rerun_with_the_trees_they_kept(tmp_path: Path,
                                                                      capsys) -> None:
    """A trial stopped by its deadline records what it grew; the code grows exactly that.
    A trial screened on a subsample (large tables) is rerun on the same rows."""
    table = mixed_table(2500, "multiclass", seed=3)
    job_dir = tmp_path / "jobs" / "cut"
    job_dir.mkdir(parents=True)
    data = definitions.record_inputs(table, None, None, job_dir)
    prepared = prepare(table, "y")
    split = make_split(prepared.y, True, 0.2, 2, 0)
    ctx = TrialContext(prepared.X, prepared.y, split, prepared.schema, prepared.problem_type,
                       prepared.metric, prepared.classes, "cut", "y", None, 1, 0)
    specs = []
    lightgbm = dict(learning_rate=0.01, num_leaves=64, min_child_samples=5,
                    feature_fraction=0.9, bagging_fraction=0.8, lambda_l2=1.0,
                    min_data_per_group=20, cat_smooth=10.0)
    for number, (family, params, train_rows, seconds) in enumerate([
            # 5000 trees, not 500: no machine grows them in the time, so the cut is certain
            ("random_forest", dict(n_estimators=5000, max_features=0.8, min_samples_leaf=1),
             None, 1.0),
            ("lightgbm", lightgbm, None, 1.0),
            ("lightgbm", dict(lightgbm, learning_rate=0.1), 700, 30.0)]):
        name = f"{family}-{number:03d}"
        # 1 s: the fit's share ends at once, each fold gets its minimum of half a second
        now = time.time()
        result = run_trial(ctx, TrialTask(name, family, params,
                                          str(job_dir / "candidates" / name / "model"),
                                          now + seconds, now + 60, train_rows=train_rows))
        specs.append({"name": name, "family": family, "params": params, "rank": len(specs) + 1,
                      "objective": result.objective, "source": "portfolio",
                      "fits": result.details["infos"], "n_threads": 1,
                      "train_rows": result.details.get("train_rows")})
    assert any(f.get("stopped_by_deadline") for f in specs[0]["fits"])  # 5000 trees: cut
    assert specs[2]["train_rows"] == 700
    (job_dir / "job.json").write_text(json.dumps({
        "request": {"target": "y", "na_values": [], "sample_weight": None,
                    "validation_fraction": 0.2, "seed": 0},
        "data": data,
        "resolved": {"problem_type": "multiclass", "metric": "Accuracy",
                     "schema": prepared.schema.to_dict(), "classes": prepared.classes}}))
    definitions.save_definitions(job_dir, specs, n_folds=2, n_threads=1, trained=True)
    for spec in specs:
        exec(compile(definitions.script(job_dir, spec["name"]), spec["name"], "exec"), {})
        printed = capsys.readouterr().out
        assert {m["name"]: m["verdict"] for m in RESULT.finditer(printed)} == {
            spec["name"]: "reproduced"}, printed
