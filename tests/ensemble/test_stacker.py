"""The stacker: features from members' predictions, nested out-of-fold predictions."""

from __future__ import annotations

import numpy as np
import pytest

from tabpilot.data.split import make_split
from tabpilot.ensemble import greedy_weights
from tabpilot.ensemble.stacking import (
    fit_stack,
    make_stacker,
    prune,
    stack_features,
    stacker_predict,
    stacking_folds,
)
from tabpilot.metrics import METRICS, score
from tabpilot.tasks import ProblemType

BINARY, MULTI, REG = ProblemType.BINARY, ProblemType.MULTICLASS, ProblemType.REGRESSION


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _complementary(rows: int = 3000, seed: int = 0):
    """Two members that each see half of the signal, one over- and one under-confident:
    no average of them is calibrated, a logistic regression on their logits is."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=rows), rng.normal(size=rows)
    y = (rng.random(rows) < _sigmoid(1.5 * a + 1.5 * b)).astype(int)
    members = [_sigmoid(4.0 * a), _sigmoid(0.4 * b)]
    return y, [np.column_stack([1 - p, p]) for p in members]


def _cv(y: np.ndarray, classification: bool = True):
    split = make_split(y, classification, n_folds=5, seed=0)
    order = split.validation_rows()
    return split, order


def test_the_stack_beats_its_best_member_and_the_greedy_ensemble_out_of_fold() -> None:
    y, preds = _complementary()
    split, order = _cv(y)
    y_valid, preds = y[order], [p[order] for p in preds]
    fitted = fit_stack(stack_features(preds, BINARY), y_valid,
                       stacking_folds(split, y_valid, True, 0), BINARY, 2)
    logloss = METRICS["LogLoss"]
    weights = greedy_weights(preds, lambda p: -score(logloss, y_valid, p))
    greedy = sum(w * p for w, p in zip(weights, preds, strict=True))
    stacked = score(logloss, y_valid, fitted.oof)
    assert stacked < min(score(logloss, y_valid, p) for p in preds)
    assert stacked < score(logloss, y_valid, greedy) - 0.02
    assert np.allclose(fitted.oof.sum(axis=1), 1.0)


def test_a_fold_s_stacked_predictions_ignore_that_fold_s_labels() -> None:
    y, preds = _complementary(1000)
    split, order = _cv(y)
    y_valid, features = y[order], stack_features([p[order] for p in preds], BINARY)
    folds = stacking_folds(split, y_valid, True, 0)
    first = fit_stack(features, y_valid, folds, BINARY, 2).oof
    flipped = y_valid.copy()
    held_out = folds[0][1]
    flipped[held_out] = 1 - flipped[held_out]
    second = fit_stack(features, flipped, folds, BINARY, 2).oof
    assert np.array_equal(first[held_out], second[held_out])
    assert not np.allclose(first[folds[1][1]], second[folds[1][1]])


def test_under_k_fold_the_stacking_folds_are_the_job_s_folds() -> None:
    y = np.random.default_rng(1).integers(0, 2, 203)
    split, order = _cv(y)
    folds = stacking_folds(split, y[order], True, 0)
    assert len(folds) == len(split.folds)
    for (train, valid), (_, job_valid) in zip(folds, split.folds, strict=True):
        assert np.array_equal(order[valid], job_valid)  # positions of that fold's rows
        assert sorted(np.concatenate([train, valid]).tolist()) == list(range(len(y)))


def test_over_a_holdout_the_stacking_folds_partition_its_rows() -> None:
    y = np.random.default_rng(2).integers(0, 3, 500)
    split = make_split(y, True, validation_fraction=0.2, n_folds=1, seed=0)
    y_valid = y[split.validation_rows()]
    folds = stacking_folds(split, y_valid, True, 0)
    assert len(folds) == 5
    seen = np.concatenate([valid for _, valid in folds])
    assert sorted(seen.tolist()) == list(range(len(y_valid)))


def test_multiclass_probabilities_cover_every_class_when_a_fold_lacks_one() -> None:
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(3), size=60)
    features = stack_features([proba, proba[::-1]], MULTI)
    assert features.shape == (60, 6)
    y = np.where(np.arange(60) < 30, 0, 2)  # class 1 never seen
    model = make_stacker(MULTI).fit(features, y)
    out = stacker_predict(model, features, 3)
    assert out.shape == (60, 3)
    assert np.all(out[:, 1] == 0) and np.allclose(out.sum(axis=1), 1.0)


def test_regression_stack_corrects_biased_members() -> None:
    rng = np.random.default_rng(4)
    truth = rng.normal(size=2000)
    y = truth + 0.1 * rng.normal(size=2000)
    members = [2.0 * truth + 1.0 + 0.5 * rng.normal(size=2000),  # scaled and shifted
               truth + 0.8 * rng.normal(size=2000)]
    split, order = _cv(y, classification=False)
    y_valid = y[order]
    preds = [m[order] for m in members]
    fitted = fit_stack(stack_features(preds, REG), y_valid,
                       stacking_folds(split, y_valid, False, 0), REG, 0)
    rmse = METRICS["RMSE"]
    assert score(rmse, y_valid, fitted.oof) < min(score(rmse, y_valid, p) for p in preds)


def test_a_deadline_passed_stops_the_fits() -> None:
    y, preds = _complementary(200)
    split, order = _cv(y)
    features = stack_features([p[order] for p in preds], BINARY)
    with pytest.raises(TimeoutError):
        fit_stack(features, y[order], stacking_folds(split, y[order], True, 0), BINARY, 2,
                  deadline=0.0)


def _signals(rows: int, n_signal: int, n_noise: int, seed: int = 0):
    """Members that each see one part of the signal, and members that see none."""
    rng = np.random.default_rng(seed)
    parts = rng.normal(size=(n_signal, rows))
    y = (rng.random(rows) < _sigmoid(1.2 * parts.sum(axis=0))).astype(int)
    probs = [_sigmoid(2.0 * p) for p in parts] + [rng.random(rows) for _ in range(n_noise)]
    return y, [np.column_stack([1 - p, p]) for p in probs]


def _fit_score(y, preds, split, calls: list[list[int]] | None = None):
    logloss = METRICS["LogLoss"]
    folds = stacking_folds(split, y, True, 0)

    def fit_score(kept: list[int]):
        if calls is not None:
            calls.append(list(kept))
        fit = fit_stack(stack_features([preds[i] for i in kept], BINARY), y, folds, BINARY, 2)
        return -score(logloss, y, fit.oof), fit
    return fit_score


def test_members_that_add_nothing_are_pruned_the_costliest_first() -> None:
    y, preds = _signals(3000, 2, 2)
    split, order = _cv(y)
    y, preds = y[order], [p[order] for p in preds]
    calls: list[list[int]] = []
    fit_score = _fit_score(y, preds, split, calls)
    best, fitted = fit_score([0, 1, 2, 3])
    costs = [1.0, 2.0, 3.0, 5.0]  # the noise members are the slowest, 3 the slowest of all
    kept, fit, value = prune(costs, fit_score, best, fitted)
    assert kept == [0, 1]
    assert calls[1] == [0, 1, 2]  # 3 tried first: the costliest
    assert value >= best and value == pytest.approx(fit_score([0, 1])[0])
    assert np.array_equal(fit.oof, fit_score([0, 1])[1].oof)


def test_members_that_each_earn_their_place_are_all_kept() -> None:
    y, preds = _signals(3000, 3, 0)
    split, order = _cv(y)
    y, preds = y[order], [p[order] for p in preds]
    fit_score = _fit_score(y, preds, split)
    best, fitted = fit_score([0, 1, 2])
    kept, fit, value = prune([3.0, 2.0, 1.0], fit_score, best, fitted)
    assert kept == [0, 1, 2] and fit is fitted and value == best


def test_pruning_stops_where_it_is_when_time_runs_out() -> None:
    y, preds = _signals(1000, 2, 2)
    split, order = _cv(y)
    y, preds = y[order], [p[order] for p in preds]
    fit_score = _fit_score(y, preds, split)
    best, fitted = fit_score([0, 1, 2, 3])
    tried: list[list[int]] = []

    def out_of_time(kept: list[int]):
        if tried:
            raise TimeoutError("the stacker's fits ran out of time")
        tried.append(kept)
        return fit_score(kept)

    kept, fit, value = prune([1.0, 2.0, 3.0, 5.0], out_of_time, best, fitted)
    assert kept == [0, 1, 2] and value >= best  # the one removal that ran was kept
