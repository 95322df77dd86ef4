"""The default selection's one-standard-error rule: a faster candidate replaces the most
accurate only when its shortfall is within one standard error of the difference of their
validation scores (a paired bootstrap, jobs/spread.py), and never more than 0.5 %."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tabpilot import AutoML
from tabpilot.execution.trial import VALIDATION_PREDICTIONS
from tabpilot.jobs import spread
from tabpilot.jobs.selection import SHORTFALL_SE, contenders, fast_choice, select
from tabpilot.reports.bootstrap import resample_counts
from tabpilot.tasks import ProblemType


def _board(errors: dict[str, float] | None, against: str = "ens") -> pd.DataFrame:
    board = pd.DataFrame({"candidate": ["ens", "one", "two", "lin"],
                          "algorithm": ["Ensemble", "LightGBM", "XGBoost", "Linear"],
                          "objective": [0.950, 0.948, 0.9465, 0.80],
                          # the most accurate meets selection.LATENCY_GOAL_MS: this rule alone
                          "latency_ms_p50": [0.9, 0.4, 0.2, 0.05]})
    board.attrs["objective_metric"] = "AUC"
    if errors is not None:
        board.attrs[SHORTFALL_SE] = {"against": against, "errors": errors}
    return board


def test_without_standard_errors_the_relative_rule_decides() -> None:
    board = _board(None)
    assert contenders(board, "ens", True) == ["one", "two"]  # "lin" is 16 % worse
    assert fast_choice(board, "ens", True) == "two"


def test_a_shortfall_beyond_one_standard_error_is_not_as_good() -> None:
    # "two" is 0.0035 short with an error of 0.001; "one" 0.002 short with 0.003
    board = _board({"one": 0.003, "two": 0.001})
    assert fast_choice(board, "ens", True) == "one"
    chosen, note = select(board, None, "balanced", True)
    assert chosen == "one"
    assert "one standard error (0.003)" in note and "--selection accuracy hands out ens" in note
    # both beyond their errors: the most accurate is handed out
    assert fast_choice(_board({"one": 0.0005, "two": 0.001}), "ens", True) is None
    assert select(_board({"one": 0.0005, "two": 0.001}), None, "balanced", True) == ("ens", None)


def test_errors_measured_against_another_candidate_are_not_used() -> None:
    board = _board({"one": 0.0, "two": 0.0}, against="one")
    assert fast_choice(board, "ens", True) == "two"  # the relative rule alone
    # a large error never widens the relative cap
    assert fast_choice(_board({"one": 1.0, "two": 1.0, "lin": 1.0}), "ens", True) == "two"


def _write_job(tmp_path: Path, y: np.ndarray, preds: dict[str, np.ndarray]) -> Path:
    np.save(tmp_path / spread.VALIDATION_TARGET, y)
    for name, p in preds.items():
        (tmp_path / "candidates" / name).mkdir(parents=True)
        np.save(tmp_path / "candidates" / name / VALIDATION_PREDICTIONS, p.astype(np.float32))
    return tmp_path


def test_the_error_is_the_paired_bootstrap_of_the_difference(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.integers(0, 2, n)
    signal = y + rng.normal(0, 1.0, n)
    good = 1 / (1 + np.exp(-signal))
    worse = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.7, n))))
    proba = {"best": np.c_[1 - good, good], "other": np.c_[1 - worse, worse],
             "same": np.c_[1 - good, good]}
    job_dir = _write_job(tmp_path, y, proba)
    board = pd.DataFrame({"candidate": ["best", "other", "same"]})
    board.attrs["objective_metric"] = "AUC"
    found = spread.shortfall_errors(job_dir, board, ProblemType.BINARY, ["other", "same"],
                                    {})
    assert found["against"] == "best"
    assert found["errors"]["same"] == 0.0  # identical predictions: no noise in the difference
    # scikit-learn's AUC on the very resamples the module draws (weights = draw counts)
    diffs = []
    for counts in resample_counts(n, spread.ROUNDS):
        for c in counts:
            diffs.append(roc_auc_score(y, proba["best"][:, 1], sample_weight=c)
                         - roc_auc_score(y, proba["other"][:, 1], sample_weight=c))
    assert found["errors"]["other"] == pytest.approx(np.std(diffs, ddof=1), rel=1e-6)
    assert 0 < found["errors"]["other"] < 0.02


def test_no_target_or_no_resampled_form_leaves_the_relative_rule(tmp_path: Path) -> None:
    board = pd.DataFrame({"candidate": ["best", "other"]})
    board.attrs["objective_metric"] = "AUC"
    assert spread.shortfall_errors(tmp_path, board, ProblemType.BINARY, ["other"], {}) is None
    y = np.zeros(10)
    job_dir = _write_job(tmp_path, y, {"best": y, "other": y})
    board.attrs["objective_metric"] = "NoSuchMetric"
    found = spread.shortfall_errors(job_dir, board, ProblemType.REGRESSION, ["other"], {})
    assert found is None


def test_a_job_keeps_its_errors_and_describe_applies_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 600
    X = rng.normal(size=(n, 4))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] + rng.normal(0, 0.8, n) > 0, "yes", "no")
    frame = pd.DataFrame(X, columns=list("abcd")).assign(y=y)
    job = AutoML(target="y", time_limit=60, max_candidates=3,
                 algorithms=["linear", "random_forest"], stacking="off", workspace=tmp_path,
                 name="spread", verbosity=0).fit(frame)
    row = job.store.get_job("spread")
    assert SHORTFALL_SE in row.stats  # measured at the job's end (None: nothing to compare)
    kept = row.stats[SHORTFALL_SE]
    board = job.leaderboard()
    assert board.attrs[SHORTFALL_SE] == kept
    if kept is not None:  # measured for what the relative rule would consider
        assert kept["against"] == board["candidate"].iloc[0]
        assert set(kept["errors"]) <= set(contenders(board, kept["against"], True))
    expected, _ = select(board, None, "balanced", True)
    assert job.describe()["BestCandidate"]["CandidateName"] == expected
