"""The stacking layer of a job: a stack-NNN candidate that loads, predicts and reruns from
the candidate notebook; `stacking=off` builds none; `auto` stacks in ensembling mode."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot import AutoML
from tabpilot.artifacts import load
from tabpilot.jobs import selection, stacking
from tabpilot.reports import definitions

FAST = ["lightgbm", "linear"]
RESULT = re.compile(r"^(?P<name>[\w-]+): validation \w+ = \S+, leaderboard \S+, difference "
                    r"\S+ \(tolerance \S+\): (?P<verdict>\w+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def stacked_job(tmp_path_factory, breast_cancer):
    ws = tmp_path_factory.mktemp("stacking")
    job = AutoML(target="target", time_limit=90, max_candidates=3, algorithms=FAST, n_workers=2,
                 n_folds=3, name="stacked", workspace=ws, mode="ensembling", stacking="on")
    job.fit(breast_cancer[0])
    return job, ws / "jobs" / "stacked"


def _stacks(job: AutoML) -> list[dict]:
    """The stack of bags (not its twin over refit models, built when the most accurate
    answers slower than the fast budget on this machine: tested in test_fast_ensemble.py)."""
    return [c for c in job.candidates() if c["Algorithm"] == "Stacking"
            and c["TrainedOn"] != selection.REFIT_FULL]


def test_the_stack_is_a_candidate_that_loads_and_predicts(stacked_job, breast_cancer) -> None:
    job, job_dir = stacked_job
    _, new_rows, truth = breast_cancer
    note = job.describe()["Stacking"]
    assert note["status"] == "built", note
    [stack] = _stacks(job)
    assert stack["CandidateName"] == note["candidate"]
    assert stack["CandidateName"].startswith("stack-")
    assert stack["InferenceLatencyMs"] > 0 and stack["ModelBytes"] > 0
    assert np.isfinite(stack["FinalAutoMLJobObjectiveMetric"]["Value"])
    members = stack["Hyperparameters"]["members"]
    assert len(members) >= 2 and not any(m.startswith(("stack", "ensemble")) for m in members)
    # members the stacker scored no worse without are recorded, in the stats and the params
    pruned = stack["Hyperparameters"].get("pruned", [])
    assert note["pruned"] == pruned and not set(pruned) & set(members)
    level1 = {c["CandidateName"] for c in job.candidates() if c["Algorithm"] not in (
        "Stacking", "Ensemble")}
    assert set(pruned) <= level1
    model = load(stack["ModelLocation"])
    assert model.metadata["algorithm"] == "Stacking" and model.metadata["members"] == members
    labels = model.predict(new_rows)
    assert set(labels) <= {"malignant", "benign"}
    assert (labels == truth.to_numpy()).mean() > 0.8
    proba = model.predict_proba(new_rows)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert json.loads((job_dir / "job.json").read_text())["resolved"]["stacking"] is True


def test_the_stack_and_the_ensemble_hold_their_members_as_hard_links(stacked_job) -> None:
    job, job_dir = stacked_job
    built = [c for c in job.candidates() if c["Algorithm"] in ("Stacking", "Ensemble")]
    assert any(c["Algorithm"] == "Stacking" for c in built)
    for candidate in built:
        model_dir = Path(candidate["ModelLocation"])
        meta = json.loads((model_dir / "metadata.json").read_text())
        members = meta["members"]  # the stack's names; the ensemble's weights by name
        assert meta["format"] == 2 and meta["member_dirs"] == len(members)
        for i, name in enumerate(members):
            own = job_dir / "candidates" / name / "model" / "predictor.pkl"
            copy = model_dir / "members" / str(i) / "predictor.pkl"
            assert copy.stat().st_ino == own.stat().st_ino, (candidate["CandidateName"], name)


def test_the_stack_s_score_is_out_of_fold_on_its_saved_predictions(stacked_job) -> None:
    from tabpilot.execution.trial import VALIDATION_PREDICTIONS
    from tabpilot.metrics import METRICS, score
    from tabpilot.reports.candidate import VALIDATION_TARGET

    job, job_dir = stacked_job
    [stack] = _stacks(job)
    name = stack["CandidateName"]
    pred = np.load(job_dir / "candidates" / name / VALIDATION_PREDICTIONS).astype(np.float64)
    y = np.load(job_dir / VALIDATION_TARGET)
    metric = METRICS[stack["FinalAutoMLJobObjectiveMetric"]["MetricName"]]
    assert score(metric, y, pred, None, stack["DecisionThreshold"]) == pytest.approx(
        stack["FinalAutoMLJobObjectiveMetric"]["Value"], abs=1e-4)


def test_the_notebook_reruns_the_stack_inside_an_ensemble(stacked_job, tmp_path: Path) -> None:
    """An ensemble holding the stack (as the greedy ensemble's pool allows): the script
    reruns the stack's members, then the stack, then the ensemble, each reproduced."""
    from tabpilot.execution.trial import VALIDATION_PREDICTIONS
    from tabpilot.metrics import METRICS, score, tune_threshold
    from tabpilot.reports.candidate import VALIDATION_TARGET

    job, job_dir = stacked_job
    [stack] = _stacks(job)
    name, members = stack["CandidateName"], stack["Hyperparameters"]["members"]
    copy = tmp_path / "jobs" / "stacked"
    shutil.copytree(job_dir, copy)
    saved = json.loads((copy / definitions.DEFINITIONS).read_text())
    blend = {name: 0.5, members[0]: 0.5}
    pred = sum(w * np.load(copy / "candidates" / m / VALIDATION_PREDICTIONS).astype(np.float64)
               for m, w in blend.items())
    metric = METRICS[stack["FinalAutoMLJobObjectiveMetric"]["MetricName"]]
    y = np.load(copy / VALIDATION_TARGET)
    objective = score(metric, y, pred, None, tune_threshold(metric, y, pred))
    saved["candidates"].append({"name": "ensemble-100", "family": "ensemble",
                                "params": {"members": blend}, "rank": 1,
                                "objective": objective,
                                "source": "ensemble"})
    (copy / definitions.DEFINITIONS).write_text(json.dumps(saved))
    text = definitions.script(copy, "ensemble-100")
    assert "sklearn.linear_model.LogisticRegression(C=" in text
    order = [text.index(f"check({m!r}") for m in [*members, name, "ensemble-100"]]
    assert order[-2] > max(order[:-2]) and order[-1] > order[-2]  # members, stack, ensemble
    ran = subprocess.run([sys.executable, "-c", text], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    verdicts = {m["name"]: m["verdict"] for m in RESULT.finditer(ran.stdout)}
    assert verdicts[name] == verdicts["ensemble-100"] == "reproduced", ran.stdout
    assert set(members) <= set(verdicts) and "DIFFERS" not in ran.stdout, ran.stdout


def test_a_stacks_twin_over_other_member_models_keeps_its_level_2_and_scores(
        stacked_job, breast_cancer, tmp_path: Path) -> None:
    """stacking.build_full, as `_full_stacks` calls it over the members' `-full` refits;
    here over the bags themselves, so the twin must answer exactly as the stack."""
    from types import SimpleNamespace

    from tabpilot.execution.trial import VALIDATION_PREDICTIONS
    from tabpilot.tasks import ProblemType

    job, job_dir = stacked_job
    train, new_rows, _ = breast_cancer
    [stack] = _stacks(job)
    name, members = stack["CandidateName"], stack["Hyperparameters"]["members"]
    stack_dir = job_dir / "candidates" / name
    original = load(stack_dir / "model")
    prepared = SimpleNamespace(X=train.drop(columns="target"), problem_type=ProblemType.BINARY,
                               classes=original.metadata["classes"])
    split = SimpleNamespace(folds=[(None, np.arange(60))])
    out = tmp_path / "candidates" / f"{name}-full" / "model"
    result = stacking.build_full(stack_dir, {m: job_dir / "candidates" / m / "model"
                                             for m in members}, out, prepared, split,
                                 deadline=time.time() + 60)
    twin = load(out)
    assert twin.metadata["refit_of"] == name and twin.metadata["members"] == members
    assert twin.metadata["stacker"] == original.metadata["stacker"]
    assert result.objective == stack["FinalAutoMLJobObjectiveMetric"]["Value"]
    assert result.threshold == stack["DecisionThreshold"] and result.latency_ms_p50 > 0
    assert np.array_equal(np.load(out.parent / VALIDATION_PREDICTIONS),
                          np.load(stack_dir / VALIDATION_PREDICTIONS))
    assert np.allclose(twin.predict_proba(new_rows).to_numpy(),
                       original.predict_proba(new_rows).to_numpy(), atol=1e-12)


def test_stacking_off_builds_no_stack(tmp_path: Path, breast_cancer) -> None:
    job = AutoML(target="target", time_limit=60, max_candidates=2, algorithms=FAST, n_workers=2,
                 n_folds=3, name="flat", workspace=tmp_path, mode="ensembling", stacking="off")
    job.fit(breast_cancer[0])
    assert not _stacks(job) and job.describe()["Stacking"] is None
    resolved = json.loads((tmp_path / "jobs" / "flat" / "job.json").read_text())["resolved"]
    assert resolved["stacking"] is False


def test_on_stacks_over_a_holdout_in_hpo_mode_and_a_winning_stack_is_not_refit(
        tmp_path: Path, breast_cancer) -> None:
    train, new_rows, _ = breast_cancer
    job = AutoML(target="target", time_limit=60, max_candidates=3, algorithms=FAST,
                 n_workers=2, name="hpo-stack", workspace=tmp_path, mode="hpo", stacking="on")
    job.fit(train)
    note = job.describe()["Stacking"]
    assert note["status"] == "built", note
    [stack] = _stacks(job)
    assert stack["Hyperparameters"]["stack_folds"]["kind"] == "holdout"
    assert stack["TrainedOn"] != "train+holdout"  # stacks are never refit
    assert set(load(stack["ModelLocation"]).predict(new_rows)) <= {"malignant", "benign"}
    best = job.describe()["BestCandidate"]
    refit = [c["CandidateName"] for c in job.candidates() if c["TrainedOn"] == "train+holdout"]
    # only the best single candidate is ever refit on every row (time allowing), and
    # none when the stack won
    assert set(refit) <= ({best["CandidateName"]} - {stack["CandidateName"]})


def test_auto_stacks_in_ensembling_mode_without_a_latency_bound() -> None:
    assert stacking.resolve("auto", "ensembling", None) is stacking.AUTO_STACKING
    assert stacking.resolve("auto", "hpo", None) is False
    assert stacking.resolve("auto", "ensembling", 5.0) is False
    assert stacking.resolve("on", "hpo", 5.0) is True
    assert stacking.resolve("off", "ensembling", None) is False


def test_a_stack_is_never_collapsed_into_a_refit_full_model() -> None:
    board = pd.DataFrame({"candidate": ["stack-009", "lightgbm-001"],
                          "algorithm": ["Stacking", "LightGBM"],
                          "latency_ms_p50": [40.0, 12.0]})
    assert selection.refit_full_target(board, bound_ms=10.0, n_folds=5) == "lightgbm-001"


def test_fewer_than_two_usable_members_is_a_skip(tmp_path: Path) -> None:
    ranked = [("lightgbm-000", tmp_path / "lightgbm-000", "lightgbm", 0.1),
              ("ensemble-002", tmp_path / "ensemble-002", "ensemble", 0.3)]
    for _, folder, _, _ in ranked:
        folder.mkdir()
        np.save(folder / "validation_predictions.npy", np.zeros(3))
    assert stacking.choose_members(ranked) == [("lightgbm-000", tmp_path / "lightgbm-000")]
    with pytest.raises(stacking.Skipped, match="needs two"):
        stacking.build(None, None, ranked, tmp_path / "stack" / "model",  # type: ignore[arg-type]
                       deadline=0.0, seed=0)


def test_a_stacks_twin_holds_each_members_refit_and_the_other_bags_as_they_are() -> None:
    completed = {"xgboost-001", "xgboost-001-full", "catboost-002", "mlp-003"}
    # catboost's refit did not fit in the time, MLP bags are never collapsed: both stay
    assert stacking.twin_members(["xgboost-001", "catboost-002", "mlp-003"], completed) == \
        ["xgboost-001-full", "catboost-002", "mlp-003"]
    # no member was refit: no twin; nor over a member that is not completed
    assert stacking.twin_members(["catboost-002", "mlp-003"], completed) is None
    assert stacking.twin_members(["xgboost-001", "linear-004"], completed) is None
