"""The learned portfolio is used when it fits a family's parameters, never otherwise."""

from __future__ import annotations

import pytest

from tabpilot.metrics import METRICS
from tabpilot.models import FAMILIES
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
