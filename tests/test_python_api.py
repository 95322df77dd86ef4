"""The Python API in AutoGluon's habits: the CLI's names, did-you-mean, every parameter
documented, progress shown by default, evaluate and leaderboard on held-out data."""

from __future__ import annotations

import contextlib
import inspect
import io
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import f1_score

from tabpilot import AutoML
from tabpilot.config import JobRequest
from tabpilot.errors import ConfigError


def test_every_request_field_is_a_typed_documented_parameter() -> None:
    params = inspect.signature(AutoML.__init__).parameters
    cli_names = {"n_folds": "folds", "n_workers": "workers"}
    for field in JobRequest.model_fields:
        name = cli_names.get(field, field)
        assert name in params, f"AutoML lacks {name}"
        assert params[name].annotation is not inspect.Parameter.empty
        assert re.search(rf"^\s+{name}:", AutoML.__doc__, re.M), f"{name} is not documented"
    for name in ("workspace", "verbosity", "on_progress"):
        assert re.search(rf"^\s+{name}:", AutoML.__doc__, re.M)


def test_unknown_argument_suggests_the_close_one(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"unknown argument 'n_fold'; did you mean "
                                          r"'n_folds'\?|did you mean 'folds'\?"):
        AutoML("y", n_fold=3, workspace=tmp_path)
    with pytest.raises(ConfigError, match=r"'time_limt'; did you mean 'time_limit'\?"):
        AutoML("y", time_limt=3, workspace=tmp_path)
    with pytest.raises(ConfigError, match="the arguments are: time_limit, metric"):
        AutoML("y", colour="red", workspace=tmp_path)
    with pytest.raises(ConfigError, match="verbosity must be 0, 1 or 2"):
        AutoML("y", verbosity=5, workspace=tmp_path)


def test_cli_names_and_request_names_both_work(tmp_path) -> None:
    assert AutoML("y", folds=3, workers=1).request.n_folds == 3
    assert AutoML("y", n_folds=4, n_workers=1).request.n_folds == 4
    assert AutoML("y", workers=2).request.n_workers == 2


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = np.where(frame["target"] == 1, "benign", "malignant")
    test = frame.sample(120, random_state=1)
    train = frame.drop(test.index)
    return train, test, tmp_path_factory.mktemp("ws")


@pytest.fixture(scope="module")
def job(fitted):
    train, _, ws = fitted
    automl = AutoML("target", time_limit=12, algorithms=["lightgbm", "linear"], workers=2,
                    folds=2, workspace=ws, name="api-job")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # the lines go to standard output by default
        automl.fit(train)
    return automl, out.getvalue()


def test_fit_shows_progress_by_default(job) -> None:
    automl, out = job
    assert automl.describe()["InferenceReasons"] == {
        "problem_type": "2 distinct values -> binary", "metric": "the default for binary",
        "feature_types": "inferred", "validation": "2-fold cross-validation (folds given)"}
    assert "job api-job: 449 rows" in out
    assert "validation: 2-fold cross-validation (folds given)\n" in out  # no override: given
    assert "problem type: binary (inferred: 2 distinct values -> binary)" in out
    assert "override with problem_type=" in out
    assert "ModelTuning: training and tuning candidates" in out
    assert re.search(r"job api-job: Completed \(\w+\) in [\d.]+s; \d+ trials done", out)


def test_evaluate_equals_scikit_learn_on_the_same_predictions(job, fitted) -> None:
    automl, _ = job
    _, test, _ = fitted
    result = automl.evaluate(test)
    labels = automl.best_model().predict(test.drop(columns="target"))
    expected = f1_score(test["target"], labels, pos_label=automl.best_model().classes[1])
    f1 = result["metrics"]["F1"]
    assert f1["value"] == pytest.approx(expected, abs=1e-9)
    assert f1["lower"] <= f1["value"] <= f1["upper"]


def test_leaderboard_scores_held_out_data(job, fitted) -> None:
    automl, _ = job
    _, test, _ = fitted
    board = automl.leaderboard(test)
    assert "test_F1" in board.columns
    best = board.loc[board["candidate"] == automl.describe()["BestCandidate"]["CandidateName"]]
    assert best["test_F1"].iloc[0] == pytest.approx(
        automl.evaluate(test)["metrics"]["F1"]["value"])
    assert isinstance(automl.leaderboard(), pd.DataFrame) and "test_F1" not in \
        automl.leaderboard().columns
