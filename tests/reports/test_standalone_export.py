"""`tabpilot export`: a candidate as a script that runs where tabpilot is not installed.

The scripts run in a real virtual environment made without tabpilot: its site-packages
holds a `.pth` file naming the project's site-packages, whose own `.pth` files (the
editable install's finder among them) are then not processed, so `import tabpilot`
fails there while pandas, numpy, scikit-learn and LightGBM import.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import Result
from typer.testing import CliRunner

import tabpilot
from tabpilot import cli, metrics
from tabpilot.execution.trial import VALIDATION_PREDICTIONS
from tabpilot.reports import definitions, standalone
from tabpilot.reports.candidate import VALIDATION_TARGET

RESULT = re.compile(r"^(?P<name>[\w-]+): validation (?P<metric>\w+) = (?P<value>\S+), "
                    r"leaderboard (?P<board>\S+), difference \S+ \(tolerance \S+\): "
                    r"(?P<verdict>\w+)$", re.MULTILINE)
WORDS = ["great", "awful", "slow", "fast", "friendly", "rude", "the", "service", "was"]


def table(n: int, seed: int) -> pd.DataFrame:
    """Numeric, categorical (with missing values), free-text and date columns, binary `y`."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "amount": rng.gamma(2.0, 50.0, n).round(2), "noise": rng.normal(size=n),
        "plan": rng.choice(["basic", "plus", "pro", None], n, p=[0.4, 0.3, 0.2, 0.1]),
        "review": [" ".join(rng.choice(WORDS, 5)) for _ in range(n)],
        "signup": (pd.Timestamp("2022-01-01")
                   + pd.to_timedelta(rng.integers(0, 700, n), unit="D")).strftime("%Y-%m-%d"),
    })
    score = (df["amount"] > 100) + (df["plan"] == "pro") + df["review"].str.contains(
        "great").astype(float) + rng.normal(0, 0.5, n)
    df["y"] = np.where(score > 1.0, "keep", "churn")
    return df


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> tuple[tabpilot.AutoML, Path, Path]:
    """One tiny job on a CSV file: LightGBM and a linear model over 3 folds, and their
    stack."""
    root = tmp_path_factory.mktemp("standalone")
    data = root / "train.csv"
    table(200, seed=0).to_csv(data, index=False)
    automl = tabpilot.AutoML(target="y", time_limit=15, max_candidates=2, n_folds=3,
                             algorithms=["lightgbm", "linear"], n_workers=2, name="alone",
                             ensemble=False, stacking="on", distill=False,
                             workspace=root / "ws")
    automl.fit(str(data))
    return automl, root / "ws" / "jobs" / "alone", data


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> str:
    """A virtual environment's python that sees the project's libraries, not tabpilot."""
    where = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = str(where / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    Path(site.stdout.strip(), "project.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    missing = _run(python, "-c", "import tabpilot", cwd=where)
    assert missing.returncode == 1 and "No module named 'tabpilot'" in missing.stderr
    return python


def _run(python: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run([python, *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)


def _export(automl: tabpilot.AutoML, candidate: str, path: Path) -> Result:
    """`tabpilot export`, in this process (a second interpreter would import it all again)."""
    return CliRunner().invoke(cli.app, ["export", automl.name, "--candidate", candidate, "-o",
                                        str(path), "--workspace", str(automl.workspace)])


@pytest.mark.parametrize("family, how", [("lightgbm", "cli"), ("linear", "api")])
def test_the_script_trains_without_tabpilot_and_predicts_as_the_job_model(
        job, bare_python: str, tmp_path: Path, family: str, how: str) -> None:
    automl, job_dir, data = job
    board = automl.leaderboard()
    candidate = next(c for c in board["candidate"] if c.startswith(family + "-"))
    script = tmp_path / "elsewhere" / "candidate.py"
    if how == "cli":
        done = _export(automl, candidate, script)
        assert done.exit_code == 0, done.output
        assert f"wrote {script}" in done.output
    else:
        script.parent.mkdir()
        script.write_text(standalone.standalone(job_dir, candidate))
    text = script.read_text()
    assert not re.search(r"^\s*(import|from) tabpilot", text, re.MULTILINE)
    assert str(job_dir) not in text and str(data) not in text  # the data is an argument

    trained = _run(bare_python, str(script), "train", str(data), "--model-out", "m.joblib",
                   "--check", cwd=tmp_path)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    found = RESULT.search(trained.stdout)
    assert found is not None, trained.stdout
    leaderboard = float(board.set_index("candidate").loc[candidate, "objective"])
    assert found["name"] == candidate and found["metric"] == "F1"
    assert found["verdict"] == "reproduced"
    assert float(found["value"]) == pytest.approx(leaderboard, rel=1e-6)

    new = table(25, seed=9)
    new.loc[0, "plan"] = "enterprise"  # a category no training row has
    new.drop(columns="y").to_csv(tmp_path / "new.csv", index=False)
    to_file = how == "cli"  # the other writes to standard output
    predicted = _run(bare_python, str(script), "predict", "m.joblib", "new.csv",
                     *(["-o", "out.csv"] if to_file else []), cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    got = pd.read_csv(tmp_path / "out.csv" if to_file else io.StringIO(predicted.stdout))
    model = tabpilot.load_model(automl.name, candidate=candidate, workspace=automl.workspace)
    frame = pd.read_csv(tmp_path / "new.csv")
    expected = model.predict_proba(frame)
    assert list(got.columns) == ["predicted_label", "probability_churn", "probability_keep"]
    np.testing.assert_allclose(got[["probability_churn", "probability_keep"]].to_numpy(),
                               expected.to_numpy(), rtol=1e-6, atol=1e-7)
    assert got["predicted_label"].tolist() == list(model.predict(frame))

    if how == "api":  # a table without some of the columns: one line naming them all
        frame.drop(columns=["plan", "signup"]).to_csv(tmp_path / "less.csv", index=False)
        bad = _run(bare_python, str(script), "predict", "m.joblib", "less.csv", cwd=tmp_path)
        lines = [line for line in bad.stderr.splitlines() if line.strip()]
        assert bad.returncode == 2 and len(lines) == 1, bad.stderr
        assert lines[0].startswith("error:") and "'plan', 'signup'" in lines[0]


def _with_candidate(job_dir: Path, where: Path, spec: dict) -> Path:
    """A copy of the job folder whose definitions also hold `spec`."""
    copy = where / "jobs" / job_dir.name
    shutil.copytree(job_dir, copy)
    saved = json.loads((copy / definitions.DEFINITIONS).read_text())
    saved["candidates"].append(spec)
    (copy / definitions.DEFINITIONS).write_text(json.dumps(saved))
    return copy


def test_an_ensemble_with_a_stack_is_exported_as_its_members_and_weights(
        job, bare_python: str, tmp_path: Path) -> None:
    """An ensemble of the two single models and their stack: the script trains the
    singles, the stack over them, and averages the three as the job would."""
    automl, job_dir, data = job
    board = list(automl.leaderboard()["candidate"])
    members = dict(zip(sorted(board), [0.5, 0.2, 0.3], strict=True))  # lightgbm linear stack
    assert any(name.startswith("stack-") for name in members)
    pred = sum(w * np.load(job_dir / "candidates" / m / VALIDATION_PREDICTIONS)
               .astype(np.float64) for m, w in members.items())
    truth = np.load(job_dir / VALIDATION_TARGET)
    metric = metrics.METRICS["F1"]
    threshold = metrics.tune_threshold(metric, truth, pred)
    objective = metrics.score(metric, truth, pred, None, threshold)
    copy = _with_candidate(job_dir, tmp_path, {
        "name": "ensemble-100", "family": "ensemble", "params": {"members": members},
        "rank": 1, "objective": objective, "source": "ensemble"})
    script = tmp_path / "ensemble.py"
    script.write_text(standalone.standalone(copy, "ensemble-100"))
    ran = _run(bare_python, str(script), "train", str(data), "--check", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    found = RESULT.search(ran.stdout)
    assert found is not None and found["verdict"] == "reproduced", ran.stdout
    assert float(found["value"]) == pytest.approx(objective, rel=1e-6)

    frame = table(20, seed=5).drop(columns="y")
    frame.to_csv(tmp_path / "new.csv", index=False)
    predicted = _run(bare_python, str(script), "predict", "model.joblib", "new.csv",
                     cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    got = pd.read_csv(io.StringIO(predicted.stdout))
    # the job's own models of the three, averaged as an ensemble averages its members
    expected = sum(w * tabpilot.load_model(automl.name, candidate=m, workspace=automl.workspace)
                   .predict_proba(frame).to_numpy() for m, w in members.items())
    expected = expected / expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got[["probability_churn", "probability_keep"]].to_numpy(),
                               expected, rtol=1e-6, atol=1e-7)


def test_a_distilled_candidate_is_refused_naming_those_that_can_be_exported(
        job, tmp_path: Path) -> None:
    """A student learned from its teacher's predictions on synthetic rows: its script
    would need the teacher and tabpilot's distillation, so it is refused."""
    automl, job_dir, _ = job
    board = list(automl.leaderboard()["candidate"])
    copy = _with_candidate(job_dir, tmp_path, {
        "name": "stack-100-distilled", "family": "lightgbm", "source": "distilled",
        "params": {"distilled_from": board[0]}, "rank": 1, "objective": 0.5})
    with pytest.raises(tabpilot.errors.ConfigError) as refused:
        standalone.standalone(copy, "stack-100-distilled")
    message = str(refused.value)
    assert "stack-100-distilled" in message and "--rerun" in message and "\n" not in message
    assert all(name in message for name in board)  # the single models and the stack


@pytest.mark.parametrize("name", sorted(metrics.METRICS))
def test_the_copied_scoring_equals_tabpilots(name: str) -> None:
    """Every metric a script can be given scores and tunes thresholds as tabpilot does."""
    rng = np.random.default_rng(len(name))
    scope: dict = {}
    exec(compile("import numpy as np\nfrom collections import namedtuple\n"
                 "from sklearn import metrics as skm\n" + standalone.scoring_code(name),
                 "scoring", "exec"), scope)
    copied, metric = scope["METRIC"], metrics.METRICS[name]
    assert (copied.name, copied.greater_is_better, copied.needs_labels) == (
        name, metric.greater_is_better, metric.needs_labels)
    weights = rng.uniform(0.5, 2.0, 60)
    if metrics.ProblemType.REGRESSION in metric.problem_types:
        y, pred = rng.normal(size=60), rng.normal(size=60)
        assert scope["score"](copied, y, pred, weights) == metrics.score(metric, y, pred,
                                                                         weights)
        return
    k = 3 if metrics.ProblemType.MULTICLASS in metric.problem_types else 2
    y = rng.integers(0, k, 60)
    pred = rng.dirichlet(np.ones(k), 60)
    if k == 3:  # the binary case too, with its tuned threshold
        y2, pred2 = rng.integers(0, 2, 60), rng.dirichlet(np.ones(2), 60)
        threshold = metrics.tune_threshold(metric, y2, pred2, weights)
        assert scope["tune_threshold"](copied, y2, pred2, weights) == threshold
        assert scope["score"](copied, y2, pred2, weights, threshold) == \
            metrics.score(metric, y2, pred2, weights, threshold)
    threshold = metrics.tune_threshold(metric, y, pred, weights) if k == 2 else None
    if k == 2:
        assert scope["tune_threshold"](copied, y, pred, weights) == threshold
    assert scope["score"](copied, y, pred, weights, threshold) == \
        metrics.score(metric, y, pred, weights, threshold)
