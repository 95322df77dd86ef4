"""A family's choice of loss (ModelFamily.losses): LightGBM and XGBoost on a regression
target that is never negative search squared error and Tweedie's loss; no other task gets a
choice."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tabpilot
from tabpilot.metrics import METRICS
from tabpilot.models import FAMILIES, FitData, lightgbm, xgboost
from tabpilot.models.base import LOSS
from tabpilot.models.portfolio import portfolio
from tabpilot.search import Finished, PortfolioThenTPE
from tabpilot.tasks import ProblemType

# each family's regression losses, the default first
LOSSES = {name: FAMILIES[name].nonnegative_losses for name in ("lightgbm", "xgboost")}


def _search(problem_type: ProblemType = ProblemType.REGRESSION, nonnegative: bool = True,
            history: list[Finished] | None = None) -> PortfolioThenTPE:
    metric = METRICS["RMSE" if problem_type is ProblemType.REGRESSION else "AUC"]
    return PortfolioThenTPE(["lightgbm", "xgboost"], metric, problem_type, 1000,
                            history=history, nonnegative_target=nonnegative)


def test_the_portfolio_tries_tweedie_right_after_every_familys_first() -> None:
    search = _search()
    assert search.n_portfolio == _search(nonnegative=False).n_portfolio + 2
    first = [search.ask() for _ in range(search.n_portfolio)]
    assert [p.family for p in first[:4]] == ["lightgbm", "xgboost"] * 2
    for family, (default, tweedie) in LOSSES.items():
        configs = portfolio(FAMILIES[family], ProblemType.REGRESSION)  # learned or not
        mine = [p for p in first if p.family == family]
        assert [p.params[LOSS] for p in mine] == [default, tweedie] + \
            [default] * (len(configs) - 1)
        # the same configuration, another loss
        assert {k: v for k, v in mine[1].params.items() if k != LOSS} == configs[0]


def test_tpe_searches_the_loss_as_a_parameter() -> None:
    search = _search()
    losses: dict[str, set[str]] = {family: set() for family in LOSSES}
    for i in range(search.n_portfolio + 40):
        proposal = search.ask()
        if proposal.source == "tpe":
            losses[proposal.family].add(proposal.params[LOSS])
        search.tell(proposal.number, float(i % 7))
    assert losses == {family: set(choice) for family, choice in LOSSES.items()}


@pytest.mark.parametrize("problem_type, nonnegative", [
    (ProblemType.REGRESSION, False), (ProblemType.BINARY, True),
    (ProblemType.MULTICLASS, True)])
def test_no_choice_of_loss_elsewhere(problem_type: ProblemType, nonnegative: bool) -> None:
    search = _search(problem_type, nonnegative)
    assert search.n_portfolio == len(search._portfolio(problem_type))
    proposals = []
    for i in range(search.n_portfolio + 10):
        proposals.append(search.ask())
        search.tell(proposals[-1].number, float(i))
    assert all(LOSS not in p.params for p in proposals)
    assert sum(p.family == "lightgbm" for p in proposals) >= 3


def test_a_resumed_search_replays_trials_with_either_loss_and_from_before_the_choice() -> None:
    lgb = FAMILIES["lightgbm"].portfolio(ProblemType.REGRESSION)
    history = [Finished("lightgbm", dict(lgb[0], objective="tweedie"), 1.0),
               Finished("lightgbm", dict(lgb[1]), 2.0)]  # an earlier version: no loss
    search = _search(history=history)
    replayed = [t for t in search.study.trials if t.state.is_finished()]
    assert [t.params["lightgbm.objective"] for t in replayed] == ["tweedie", "regression"]
    fresh = _search()
    assert search.n_portfolio == fresh.n_portfolio - 2  # both configurations were tried
    proposals = [search.ask() for _ in range(search.n_portfolio)]
    assert not any(p.family == "lightgbm" and p.params == dict(lgb[0], objective="tweedie")
                   for p in proposals)


def _positive(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, np.exp(1.0 + X[:, 0] + 0.5 * X[:, 1] + rng.normal(0, 0.3, n))


def _objective(family: str, booster) -> str:
    if family == "lightgbm":
        return booster.params["objective"]
    return json.loads(booster.save_config())["learner"]["objective"]["name"]


@pytest.mark.parametrize("family, metric", [("lightgbm", "l2"), ("xgboost", "rmse")])
def test_a_tweedie_model_is_early_stopped_on_squared_error(family: str, metric: str) -> None:
    X, y = _positive(600, 0)
    info: dict = {}
    data = FitData(X[:450], y[:450], ProblemType.REGRESSION, 0, [], X_valid=X[450:],
                   y_valid=y[450:], deadline=time.time() + 60, n_threads=1, seed=0,
                   curves=True, info=info)
    model = FAMILIES[family]
    tweedie = LOSSES[family][1]
    booster = model.fit(dict(model.portfolio(ProblemType.REGRESSION)[0], objective=tweedie),
                        data)
    assert _objective(family, booster) == tweedie
    assert info["curves"]["metric"] == metric
    # the best round is the one with the least squared error on the validation rows
    assert info["best_iteration"] == int(np.argmin(info["curves"]["validation"])) + 1
    pred = model.predict(booster, X[450:], ProblemType.REGRESSION)
    assert (pred > 0).all()
    rmse = float(np.sqrt(np.mean((pred - y[450:]) ** 2)))
    assert rmse < float(np.std(y[450:]))  # it learned the mean, not its log
    # its validation curve is the RMSE of the means: the best round's equals it
    best = info["curves"]["validation"][info["best_iteration"] - 1]
    assert best == pytest.approx(rmse ** 2 if metric == "l2" else rmse, rel=1e-4)


def test_an_unknown_loss_is_refused() -> None:
    assert lightgbm.regression_loss({}) == {"objective": "regression"}
    assert lightgbm.regression_loss({LOSS: "tweedie"}) == {"objective": "tweedie",
                                                           "metric": "l2"}
    assert xgboost.regression_loss({}) == {"objective": "reg:squarederror",
                                           "eval_metric": "rmse"}
    assert xgboost.regression_loss({LOSS: "reg:tweedie"}) == {"objective": "reg:tweedie",
                                                              "eval_metric": "rmse"}
    for module in (lightgbm, xgboost):
        with pytest.raises(ValueError, match="huber"):
            module.regression_loss({LOSS: "huber"})


@pytest.mark.slow  # 20 s a family: a job and its exported script
@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
def test_a_tweedie_candidate_is_compiled_and_its_code_reproduces_it(tmp_path: Path,
                                                                   family: str) -> None:
    X, y = _positive(500, 1)
    table = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(
        kind=np.where(X[:, 2] > 0, "up", "down"), y=y)
    path = tmp_path / "train.csv"
    table.to_csv(path, index=False)
    job = tabpilot.AutoML(target="y", time_limit=60, max_candidates=2, n_folds=2,
                          algorithms=[family], n_workers=1, name="tweedie",
                          workspace=tmp_path / "ws").fit(str(path))
    candidate = f"{family}-001"
    tweedie = LOSSES[family][1]
    assert job.store.get_candidate(job.name, candidate).params[LOSS] == tweedie
    model = tabpilot.load_model(job.name, candidate, workspace=job.workspace)
    assert model.compiled  # checked against the Python path when packaged
    assert (np.asarray(model.predict(table.drop(columns="y"))) > 0).all()
    script = tmp_path / "tweedie.py"
    done = subprocess.run([sys.executable, "-m", "tabpilot", "export", job.name, "--candidate",
                           candidate, "-o", str(script), "--workspace",
                           str(job.workspace)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"'objective': '{tweedie}'" in script.read_text() or \
        f"objective='{tweedie}'" in script.read_text()
    ran = subprocess.run([sys.executable, str(script), "train", str(path)], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"{candidate}: validation" in ran.stdout and "reproduced" in ran.stdout, ran.stdout
