"""The learned portfolio is used when it fits a family's parameters, never otherwise."""

from __future__ import annotations

import time

import numpy as np
import optuna
import pytest
from sklearn.datasets import make_classification

from tabpilot.metrics import METRICS
from tabpilot.models import FAMILIES, FitData
from tabpilot.models import portfolio as learned_portfolio
from tabpilot.search import PortfolioThenTPE
from tabpilot.tasks import ProblemType


@pytest.fixture
def learned(monkeypatch):
    def use(families: dict) -> None:
        monkeypatch.setattr(learned_portfolio, "_learned", lambda: families)
    return use


def test_learned_configurations_replace_the_hand_written_ones(learned) -> None:
    lgb = FAMILIES["lightgbm"]
    hand = lgb.portfolio(ProblemType.BINARY)
    config = dict(hand[0], learning_rate=0.123, num_leaves=77)
    learned({"lightgbm": {"classification": [config]}})
    assert learned_portfolio.portfolio(lgb, ProblemType.MULTICLASS) == [config]
    assert learned_portfolio.portfolio(lgb, ProblemType.REGRESSION) == \
        lgb.portfolio(ProblemType.REGRESSION)  # nothing learned for regression: hand-written
    strategy = PortfolioThenTPE(["lightgbm"], METRICS["AUC"], ProblemType.BINARY, 1000)
    assert strategy.n_portfolio == 1
    assert strategy.ask().params["num_leaves"] == 77


def test_configurations_that_do_not_match_the_parameters_are_ignored(learned) -> None:
    lgb = FAMILIES["lightgbm"]
    learned({"lightgbm": {"classification": [{"learning_rate": 0.1}]}})  # keys missing
    assert learned_portfolio.portfolio(lgb, ProblemType.BINARY) == lgb.portfolio(ProblemType.BINARY)


def test_the_shipped_file_fits_every_family() -> None:
    for family in FAMILIES.values():
        for ptype in ProblemType:
            configs = learned_portfolio.portfolio(family, ptype)
            assert configs and all(set(c) == set(family.portfolio(ptype)[0]) for c in configs)


def _space(family) -> dict:
    """The family's searched parameters, name -> Optuna distribution."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    family.params(trial, 10_000)
    return {name.split(".", 1)[1]: dist for name, dist in trial.distributions.items()}


def _tiny(problem_type: ProblemType) -> FitData:
    X, y = make_classification(160, 6, n_informative=3, n_classes=3, random_state=0)
    n_classes = {ProblemType.BINARY: 2, ProblemType.MULTICLASS: 3}.get(problem_type, 0)
    if problem_type is ProblemType.BINARY:
        y = (y > 0).astype(int)
    if problem_type is ProblemType.REGRESSION:
        y = X[:, 0] * 2.0 + y
    return FitData(X[:120], y[:120], problem_type, n_classes, [], X_valid=X[120:],
                   y_valid=y[120:], deadline=time.time() + 60, n_threads=1, seed=0)


@pytest.mark.parametrize("family_name", ["lightgbm", "xgboost", "catboost"])
def test_every_shipped_configuration_is_in_the_space_and_trains(family_name: str) -> None:
    """Each configuration the loader hands out (from the shipped portfolio.json where it has
    one for the family) lies inside the family's search space and trains on a tiny table."""
    family = FAMILIES[family_name]
    space = _space(family)
    shipped = learned_portfolio._learned().get(family_name, {})
    for ptype in (ProblemType.BINARY, ProblemType.MULTICLASS, ProblemType.REGRESSION):
        configs = learned_portfolio.portfolio(family, ptype)
        assert configs, ptype  # the loops below check nothing otherwise
        if shipped.get(learned_portfolio.task_kind(ptype)):  # the file's list is the one used
            assert configs == shipped[learned_portfolio.task_kind(ptype)]
        for config in configs:
            assert set(config) == set(space)
            for key, value in config.items():
                dist = space[key]
                assert dist._contains(dist.to_internal_repr(value)), (family_name, key, value)
        data = _tiny(ptype)
        for config in configs:
            estimator = family.fit(dict(config, n_estimators=15), data)
            pred = family.predict(estimator, data.X_valid, ptype)
            assert len(pred) == 40 and np.isfinite(pred).all()
