"""Cost-aware scheduling on large tables: subsampled screening, ASHA promotion, row caps."""

from __future__ import annotations

import numpy as np

from tabpilot.data.split import subsample
from tabpilot.metrics import METRICS
from tabpilot.models import FAMILIES
from tabpilot.search import PortfolioThenTPE
from tabpilot.search.halving import (
    ETA,
    LARGE_ROWS,
    SCREEN_MAX_ROWS,
    SCREEN_MIN_ROWS,
    SLOW_ROWS,
    Promotions,
    RowBudget,
)
from tabpilot.tasks import ProblemType


def test_small_tables_train_on_every_row() -> None:
    strategy = PortfolioThenTPE(None, METRICS["AUC"], ProblemType.BINARY, LARGE_ROWS - 1)
    assert all(strategy.ask().train_rows is None for _ in range(10))


def test_large_tables_screen_the_portfolio_then_promote_the_best_third() -> None:
    n = 400_000
    strategy = PortfolioThenTPE(["lightgbm", "xgboost"], METRICS["AUC"], ProblemType.BINARY, n)
    portfolio = [strategy.ask() for _ in range(strategy.n_portfolio)]
    assert {p.source for p in portfolio} == {"portfolio"}
    # each family's first configuration trains on every row; the others are screened
    leads = [p for p in portfolio if p.train_rows is None]
    assert sorted(p.family for p in leads) == ["lightgbm", "xgboost"]
    screened = [p for p in portfolio if p.train_rows is not None]
    assert {p.train_rows for p in screened} == {n // 20}
    for p in leads:
        strategy.tell(p.number, 0.5)
    scores = np.linspace(0.70, 0.80, len(screened))
    for p, value in zip(screened, scores, strict=True):
        strategy.tell(p.number, float(value))
    promoted = []
    while (p := strategy.ask()).source == "promoted":
        promoted.append(p)
    assert len(promoted) == len(screened) // ETA
    assert promoted[0].params == screened[-1].params  # the best screened first
    assert all(p.train_rows is None for p in promoted)  # boosting: every row
    numbers = [q.number for q in portfolio + promoted + [p]]
    assert len(set(numbers)) == len(numbers)  # candidate names stay unique
    assert p.source == "tpe" and p.train_rows is None


def test_slow_families_are_capped_on_large_tables() -> None:
    rows = RowBudget(1_000_000)
    assert rows.full("random_forest") == SLOW_ROWS and rows.full("lightgbm") is None
    assert rows.screen("random_forest") <= SLOW_ROWS
    assert RowBudget(50_000).full("random_forest") is None
    assert RowBudget(5_000_000).screen("lightgbm") == SCREEN_MAX_ROWS
    assert RowBudget(LARGE_ROWS).screen("lightgbm") == SCREEN_MIN_ROWS


def test_promotion_follows_the_metric_direction_and_ignores_failures() -> None:
    rung = Promotions(greater_is_better=False)
    for value in (5.0, 1.0, None, 3.0, float("nan"), 4.0, 2.0, 6.0):
        rung.add("lightgbm", {"v": value}, value)
    assert [rung.next().value, rung.next().value, rung.next()] == [1.0, 2.0, None]


def test_subsample_is_seeded_sorted_and_bounded() -> None:
    rows = np.arange(0, 1000, 3)
    a, b = subsample(rows, 100, 7), subsample(rows, 100, 7)
    assert len(a) == 100 and np.array_equal(a, b) and np.all(np.diff(a) > 0)
    assert set(a) <= set(rows)
    assert subsample(rows, None, 0) is rows and subsample(rows, 10_000, 0) is rows


def test_memory_heavy_families_keep_their_rows_under_their_cap_on_large_tables() -> None:
    """Linear (a dense one-hot matrix) and CatBoost (CTR tables) cost several times the
    table's memory per row: their lead configuration and promotions stop at max_rows."""
    n = 1_000_000
    strategy = PortfolioThenTPE(["linear", "catboost", "lightgbm"], METRICS["RMSE"],
                                ProblemType.REGRESSION, n)
    leads = {p.family: p.train_rows for p in (strategy.ask() for _ in range(strategy.n_portfolio))
             if p.train_rows is None or p.train_rows > SCREEN_MAX_ROWS}
    caps = {f: FAMILIES[f].max_rows for f in ("linear", "catboost")}
    assert leads == {"linear": caps["linear"], "catboost": caps["catboost"], "lightgbm": None}
    assert all(cap is not None and SCREEN_MAX_ROWS < cap < n for cap in caps.values())
    assert RowBudget(caps["linear"]).full("linear") is None  # not past its cap: every row
