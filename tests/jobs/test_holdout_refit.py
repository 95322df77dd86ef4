"""On a holdout, the most accurate ensemble's members are refit on every training row, the
holdout's too, as `-full` twins, and the `-full` ensemble holds them (jobs/refits.py
`_collapse_members`, AutoGluon's refit_full). Real jobs, models and predictions."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot import AutoML
from tabpilot.artifacts import load
from tabpilot.data.split import make_split
from tabpilot.execution.trial import VALIDATION_PREDICTIONS
from tabpilot.jobs import ensembling, selection
from tabpilot.reports.candidate import VALIDATION_TARGET

FAMILIES = ["lightgbm", "xgboost"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 800
    a, b, c, d = (rng.normal(size=n) for _ in range(4))
    y = np.where(((a > 0) ^ (b > 0)) | (c + d + 0.7 * rng.normal(size=n) > 1.5), "yes", "no")
    # rare labels, some of them only in the holdout: an encoder fitted with its rows differs
    shop = [f"shop{i}" for i in rng.integers(0, 300, size=n)]
    return pd.DataFrame({"a": a, "b": b, "c": c, "d": d, "shop": shop, "y": y})


def _fit(frame: pd.DataFrame, ws: Path, name: str, **kwargs) -> AutoML:
    return AutoML(target="y", time_limit=120, max_candidates=6, n_workers=2, folds=1,
                  algorithms=FAMILIES, workspace=ws, name=name, metric="AUC",
                  stacking="off", distill=False, **kwargs).fit(frame)


@pytest.fixture(scope="module")
def job(tmp_path_factory, frame) -> AutoML:
    # the most accurate handed out (not a faster candidate within the tolerance)
    return _fit(frame, tmp_path_factory.mktemp("holdout-refit-ws"), "holdout",
                selection="accuracy")


def _board(job: AutoML) -> pd.DataFrame:
    return job.leaderboard().set_index("candidate")


def _job_dir(job: AutoML) -> Path:
    return Path(job.workspace) / "jobs" / str(job.name)


def _weights(directory: Path) -> dict[str, float]:
    model = load(directory / "model")
    return dict(zip(model.predictor.names, model.predictor.weights, strict=True))


def _ensemble(job: AutoML, suffix: str = "") -> str:
    names = [n for n in _board(job).index if n.startswith("ensemble-") and (
        n.endswith(suffix) if suffix else not n.endswith((ensembling.FAST_SUFFIX,
                                                          selection.FULL_SUFFIX)))]
    assert len(names) == 1, _board(job)
    return names[0]


def _holdout(job: AutoML, frame: pd.DataFrame) -> np.ndarray:
    """The job's holdout rows, split again as the job split them (checked against the
    targets it saved)."""
    y = (frame["y"] == "yes").to_numpy().astype(int)
    rows = make_split(y, stratify=True, n_folds=1, seed=0).folds[0][1]
    saved = np.load(_job_dir(job) / VALIDATION_TARGET, allow_pickle=True)
    assert np.array_equal(y[rows], saved)  # classes as indices: no, yes
    return rows


def _log_loss(model, X: pd.DataFrame, y: pd.Series) -> float:
    p = model.predict_proba(X)["yes"].to_numpy().clip(1e-12, 1 - 1e-12)
    return float(-np.mean(np.where(y == "yes", np.log(p), np.log(1 - p))))


def test_the_ensembles_members_are_refit_with_the_holdouts_rows(job, frame) -> None:
    board, job_dir = _board(job), _job_dir(job)
    rows = {c["CandidateName"]: c for c in job.candidates()}
    members = _weights(job_dir / "candidates" / _ensemble(job))
    assert len(members) >= 2, members
    holdout = _holdout(job, frame)
    X, y = frame.drop(columns="y").iloc[holdout], frame["y"].iloc[holdout]
    for member in members:
        twin = f"{member}{selection.FULL_SUFFIX}"
        assert rows[twin]["TrainedOn"] == selection.REFIT_FULL, board
        # its parent's holdout score and predictions, carried over
        assert board.at[twin, "objective"] == board.at[member, "objective"]
        assert np.array_equal(np.load(job_dir / "candidates" / twin / VALIDATION_PREDICTIONS),
                              np.load(job_dir / "candidates" / member / VALIDATION_PREDICTIONS))
        refit, parent = (load(job_dir / "candidates" / n / "model") for n in (twin, member))
        assert refit.metadata["refit_of"] == member
        # the encoder of the training part, its parent's: the twins and the members not
        # refit share one encoding of a row (Split.refit_rows)
        assert pickle.dumps(refit.predictor.encoder) == pickle.dumps(parent.predictor.encoder)
        # it learnt the holdout's rows, which its parent never saw
        assert _log_loss(refit, X, y) < _log_loss(parent, X, y)


def test_the_full_ensemble_holds_the_twins_and_is_handed_out(job) -> None:
    board, job_dir = _board(job), _job_dir(job)
    main, full = _ensemble(job), _ensemble(job, selection.FULL_SUFFIX)
    assert _weights(job_dir / "candidates" / full) == pytest.approx(
        {f"{n}{selection.FULL_SUFFIX}": w
         for n, w in _weights(job_dir / "candidates" / main).items()})
    assert board.at[full, "objective"] == pytest.approx(board.at[main, "objective"], abs=1e-12)
    # the twin names its parent, which the default selection then never hands out
    assert job.leaderboard().attrs[selection.REFIT_PARENTS] == [main]
    desc = job.describe()
    # a tie on the leaderboard: the model refit on every row first
    assert desc["BestCandidate"]["CandidateName"] == full, board
    assert desc["BestCandidate"]["TrainedOn"] == selection.REFIT_FULL
    assert "refit on every training row, the holdout's too" in desc["SelectionNote"]


@pytest.mark.slow  # 15 s; the condition is one line of the runner's
def test_no_member_is_refit_under_a_latency_bound(tmp_path, frame) -> None:
    job = _fit(frame, tmp_path, "bounded", max_latency_ms=100.0)
    assert not [c for c in job.candidates() if c["TrainedOn"] == selection.REFIT_FULL]


def test_a_holdouts_refits_keep_the_time_of_parallel_ones() -> None:
    from types import SimpleNamespace

    from tabpilot.execution import TrialResult
    from tabpilot.jobs import refits

    results = {f"lightgbm-00{i}": TrialResult(f"lightgbm-00{i}", "Completed", fit_seconds=4.0,
                                              details={"package_seconds": 1.0})
               for i in range(4)}
    board = pd.DataFrame({"candidate": ["ensemble-009", *results],
                          "algorithm": ["Ensemble", *["LightGBM"] * 4]})
    runner = SimpleNamespace(_results=results, n_workers=2)
    holdout = refits._collapse_seconds(results["lightgbm-000"], 1)
    # the four best single models, two at a time on two workers
    assert refits.Refits._collapse_reserve(runner, board, 1, 1000.0) == \
        pytest.approx(4 * holdout / 2)
    # k-fold bags: one after another, as measured
    bag = refits._collapse_seconds(results["lightgbm-000"], 5)
    assert refits.Refits._collapse_reserve(runner, board, 5, 1000.0) == pytest.approx(4 * bag)
    # at most a tenth of the limit
    assert refits.Refits._collapse_reserve(runner, board, 1, 20.0) == \
        pytest.approx(refits.COLLAPSE_SHARE * 20.0)

