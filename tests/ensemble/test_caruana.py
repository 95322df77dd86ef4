from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabpilot.ensemble import EnsemblePredictor, greedy_weights
from tabpilot.metrics import METRICS, score
from tabpilot.tasks import ProblemType


def _noisy_copies(n_models: int = 4, rows: int = 2000, seed: int = 0):
    """Models that see the truth through independent noise: averaging them helps."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=rows)
    y = (truth > 0).astype(int)
    preds = []
    for _ in range(n_models):
        logit = truth + rng.normal(scale=1.5, size=rows)
        p = 1 / (1 + np.exp(-logit))
        preds.append(np.column_stack([1 - p, p]))
    return y, preds


def test_weights_sum_to_one_and_the_ensemble_beats_every_member() -> None:
    y, preds = _noisy_copies()
    auc = METRICS["AUC"]
    weights = greedy_weights(preds, lambda p: score(auc, y, p))
    assert weights.sum() == pytest.approx(1.0)
    assert (weights > 0).sum() >= 2
    blended = sum(w * p for w, p in zip(weights, preds, strict=True))
    assert score(auc, y, blended) > max(score(auc, y, p) for p in preds)


def test_a_useless_model_gets_no_weight() -> None:
    y, preds = _noisy_copies(3)
    rng = np.random.default_rng(5)
    junk = rng.uniform(size=len(y))
    preds.append(np.column_stack([1 - junk, junk]))
    logloss = METRICS["LogLoss"]
    weights = greedy_weights(preds, lambda p: -score(logloss, y, p))
    assert weights[-1] == 0


def test_a_single_dominant_model_keeps_all_the_weight() -> None:
    y, preds = _noisy_copies(2)
    perfect = np.column_stack([1 - y, y]).astype(float) * 0.98 + 0.01
    weights = greedy_weights([perfect, *preds], lambda p: -score(METRICS["LogLoss"], y, p))
    assert weights[0] == pytest.approx(1.0)


@pytest.mark.parametrize("budget", [1.0, 2.0, 2.5, 10.0])
def test_a_budget_bounds_the_summed_cost_of_the_distinct_members(budget) -> None:
    y, preds = _noisy_copies(5)
    costs = [1.0, 1.0, 1.5, 0.5, 3.0]
    auc = METRICS["AUC"]
    weights = greedy_weights(preds, lambda p: score(auc, y, p), costs=costs, budget=budget)
    chosen = weights > 0
    assert weights.sum() == pytest.approx(1.0)
    assert sum(c for c, used in zip(costs, chosen, strict=True) if used) <= budget
    if budget >= sum(costs):  # nothing left out: the unbounded selection
        assert np.array_equal(weights, greedy_weights(preds, lambda p: score(auc, y, p)))


def test_a_budget_below_every_cost_selects_nothing() -> None:
    y, preds = _noisy_copies(3)
    weights = greedy_weights(preds, lambda p: score(METRICS["AUC"], y, p),
                             costs=[1.0, 2.0, 3.0], budget=0.5)
    assert not weights.any()


def test_a_budget_starts_from_the_best_affordable_model() -> None:
    y, preds = _noisy_copies(2)
    perfect = np.column_stack([1 - y, y]).astype(float) * 0.98 + 0.01
    logloss = METRICS["LogLoss"]
    weights = greedy_weights([perfect, *preds], lambda p: -score(logloss, y, p),
                             costs=[5.0, 1.0, 1.0], budget=2.0)
    assert weights[0] == 0 and weights[1:].sum() == pytest.approx(1.0)


def test_no_predictions_is_an_error() -> None:
    with pytest.raises(ValueError):
        greedy_weights([], lambda p: 0.0)


class _Constant:
    """A member predictor that always answers the same probabilities (real arithmetic)."""

    problem_type = ProblemType.BINARY
    classes = ["a", "b"]
    threshold = 0.5

    def __init__(self, p: float, features: list[str]) -> None:
        self.p = p
        self.features = features

    def raw_predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.tile([1 - self.p, self.p], (len(X), 1))


def test_ensemble_predictor_averages_members_and_unions_features() -> None:
    ens = EnsemblePredictor([_Constant(0.2, ["x"]), _Constant(0.8, ["x", "y"])], [0.25, 0.75],
                            ["m1", "m2"], ProblemType.BINARY, ["a", "b"], 0.5)
    X = pd.DataFrame({"x": [1, 2], "y": [3, 4]})
    proba = ens.predict_proba(X)
    assert proba["b"].tolist() == pytest.approx([0.65, 0.65])
    assert ens.predict(X).tolist() == ["b", "b"]
    assert ens.features == ["x", "y"]


def test_a_member_that_adds_nothing_is_pruned() -> None:
    """A model whose one inclusion the later steps diluted: the ensemble without it scores
    at least as well, so it is dropped (it would only add its latency)."""
    rng = np.random.default_rng(2)
    y = rng.normal(size=3000)
    good = [y + rng.normal(scale=1.0, size=len(y)) for _ in range(3)]
    # the first pick (the least error alone), then only noise beside the three it averages
    lone = sum(good) / 3 + 0.3 * rng.normal(size=len(y))
    preds = [lone, *good]
    rmse = METRICS["RMSE"]

    def neg_rmse(p):
        return -score(rmse, y, p)

    weights = greedy_weights(preds, neg_rmse)
    assert weights[0] == 0 and weights[1:] == pytest.approx([1 / 3] * 3)
    kept = weights > 0
    blended = sum(w * p for w, p in zip(weights, preds, strict=True))
    for i in np.flatnonzero(kept):  # every member left earns its place
        rest = weights.copy()
        rest[i] = 0
        if rest.sum():
            without = sum(w * p for w, p in zip(rest / rest.sum(), preds, strict=True))
            assert neg_rmse(without) < neg_rmse(blended)
