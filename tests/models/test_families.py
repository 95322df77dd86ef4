from __future__ import annotations

import pickle
import time

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from tabpilot.data.schema import ColumnKind, Schema
from tabpilot.features import build_encoder
from tabpilot.models import FAMILIES, FitData, get_family
from tabpilot.tasks import ProblemType

BIN, MULTI, REG = ProblemType.BINARY, ProblemType.MULTICLASS, ProblemType.REGRESSION
N_TRAIN, N_VALID = 240, 120
SCHEMA = Schema({"a": ColumnKind.NUMERIC, "b": ColumnKind.NUMERIC,
                 "shop": ColumnKind.CATEGORICAL})


def _table(seed: int = 0) -> tuple[pd.DataFrame, dict[ProblemType, np.ndarray]]:
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_VALID
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                       "shop": rng.choice(["p", "q", "r", "s"], n)})
    df.loc[::11, "a"] = np.nan
    df.loc[::13, "shop"] = None
    signal = df["a"].fillna(0).to_numpy() + 1.5 * df["shop"].eq("p").to_numpy()
    noisy = signal + rng.normal(scale=0.3, size=n)  # label noise: early stopping ends sooner
    targets = {
        BIN: (noisy > 0.3).astype(np.int64),
        MULTI: np.digitize(noisy, np.quantile(noisy, [1 / 3, 2 / 3])).astype(np.int64),
        REG: noisy,
    }
    return df, targets


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    # tiny matrices: multi-threaded BLAS only adds contention (the MLP gets ~10x slower)
    with threadpool_limits(limits=1):
        yield


DF, TARGETS = _table()
TRAIN, VALID = np.arange(N_TRAIN), np.arange(N_TRAIN, N_TRAIN + N_VALID)


def _fit_data(family, ptype: ProblemType, with_valid: bool = True, **kwargs):
    encoder = build_encoder(SCHEMA, family.style).fit(DF.iloc[TRAIN])
    X = encoder.transform(DF)
    y = TARGETS[ptype]
    cats = encoder.categorical_indices_ if family.style == "native" else []
    data = FitData(X=X[TRAIN], y=y[TRAIN], problem_type=ptype,
                   n_classes=len(np.unique(y)) if ptype.is_classification else 0,
                   categorical_indices=cats,
                   X_valid=X[VALID] if with_valid else None,
                   y_valid=y[VALID] if with_valid else None, **kwargs)
    return data, X[VALID], y[VALID]


def _check_predictions(pred: np.ndarray, ptype: ProblemType, y_valid: np.ndarray,
                       learned: bool = True) -> None:
    if ptype.is_classification:
        k = 2 if ptype is BIN else 3
        assert pred.shape == (N_VALID, k)
        assert np.isfinite(pred).all()
        assert (pred >= 0).all()
        np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-5)
        if learned:
            majority = np.bincount(y_valid).max() / len(y_valid)
            accuracy = (pred.argmax(axis=1) == y_valid).mean()
            assert accuracy > majority + 0.15
    else:
        assert pred.shape == (N_VALID,)
        assert np.isfinite(pred).all()
        if learned:
            r2 = 1 - np.mean((pred - y_valid) ** 2) / np.var(y_valid)
            assert r2 > 0.5


def test_registry_holds_every_family() -> None:
    assert set(FAMILIES) == {"lightgbm", "xgboost", "catboost", "random_forest",
                             "extra_trees", "linear", "mlp"}
    for name, family in FAMILIES.items():
        assert get_family(name) is family
        assert family.style in ("native", "ordinal", "onehot")
        for ptype in (BIN, MULTI, REG):
            assert family.portfolio(ptype)


@pytest.mark.parametrize("ptype", [BIN, MULTI, REG], ids=str)
@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_fits_and_predicts(name: str, ptype: ProblemType) -> None:
    family = FAMILIES[name]
    data, X_valid, y_valid = _fit_data(family, ptype)
    estimator = family.fit(dict(family.portfolio(ptype)[0]), data)
    _check_predictions(family.predict(estimator, X_valid, ptype), ptype, y_valid)


@pytest.mark.parametrize("name", ["lightgbm", "xgboost", "catboost"])
def test_boosters_record_the_best_iteration(name: str) -> None:
    family = FAMILIES[name]
    data, _, _ = _fit_data(family, BIN)
    family.fit(dict(family.portfolio(BIN)[0]), data)
    assert data.info["best_iteration"] >= 1
    refit = family.refit_params(family.portfolio(BIN)[0], [data.info])
    assert refit["n_estimators"] >= 10


@pytest.mark.parametrize("name", ["random_forest", "extra_trees"])
def test_a_forests_refit_grows_as_many_trees_as_its_fits_did(name: str) -> None:
    """A deadline stops a forest's fits short of n_estimators; its refit, which keeps their
    scores, grows their mean number of trees, not the parameter's."""
    family = FAMILIES[name]
    params = dict(family.portfolio(BIN)[0], n_estimators=200)
    refit = family.refit_params(params, [{"n_estimators": 62}, {"n_estimators": 71}])
    assert refit == dict(params, n_estimators=66)
    assert family.refit_params(params, [{"n_estimators": 200}])["n_estimators"] == 200
    assert family.refit_params(params, []) == params  # nothing recorded: as asked


@pytest.mark.parametrize("ptype", [BIN, MULTI, REG], ids=str)
@pytest.mark.parametrize("name", ["lightgbm", "xgboost", "catboost", "random_forest",
                                  "extra_trees"])
def test_past_deadline_still_returns_a_usable_model(name: str, ptype: ProblemType) -> None:
    family = FAMILIES[name]
    data, X_valid, y_valid = _fit_data(family, ptype, with_valid=False, deadline=time.time())
    estimator = family.fit(dict(family.portfolio(ptype)[0]), data)
    _check_predictions(family.predict(estimator, X_valid, ptype), ptype, y_valid,
                       learned=False)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_multiclass_fold_missing_a_class_gives_every_class_column(name: str) -> None:
    family = FAMILIES[name]
    data, X_valid, _ = _fit_data(family, MULTI, with_valid=False)
    data.y = np.where(data.y == 2, 1, data.y)  # the fold lacks class 2
    assert data.n_classes == 3
    params = dict(family.portfolio(MULTI)[0])
    if name in ("lightgbm", "xgboost", "catboost"):
        params["n_estimators"] = 30  # no validation set: cap the rounds
    estimator = family.fit(params, data)
    pred = family.predict(estimator, X_valid, MULTI)
    assert pred.shape == (N_VALID, 3)
    np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-5)
    assert pred[:, 2].max() < 0.05


@pytest.mark.parametrize("name", ["linear", "random_forest", "lightgbm"])
def test_sample_weights_are_used(name: str) -> None:
    family = FAMILIES[name]
    ptype = BIN
    plain, X_valid, _ = _fit_data(family, ptype, with_valid=False)
    weights = np.where(plain.y == 1, 20.0, 1.0)
    weighted, _, _ = _fit_data(family, ptype, with_valid=False, weights=weights)
    params = dict(family.portfolio(ptype)[0])
    if name == "lightgbm":
        params["n_estimators"] = 50
    p_plain = family.predict(family.fit(params, plain), X_valid, ptype)[:, 1]
    p_weighted = family.predict(family.fit(params, weighted), X_valid, ptype)[:, 1]
    assert p_weighted.mean() > p_plain.mean() + 0.02


def test_mlp_regression_predicts_in_the_target_units() -> None:
    family = FAMILIES["mlp"]
    data, X_valid, _ = _fit_data(family, REG)
    data.y = data.y * 1000 + 5000
    pred = family.predict(family.fit(dict(family.portfolio(REG)[0]), data), X_valid, REG)
    assert 3000 < pred.mean() < 7000


@pytest.mark.parametrize("name", list(FAMILIES))
def test_fitted_model_survives_a_pickle_round_trip(name: str) -> None:
    family = FAMILIES[name]
    data, X_valid, _ = _fit_data(family, MULTI)
    estimator = family.fit(dict(family.portfolio(MULTI)[0]), data)
    again = pickle.loads(pickle.dumps(estimator))
    np.testing.assert_allclose(family.predict(again, X_valid, MULTI),
                               family.predict(estimator, X_valid, MULTI))
    np.testing.assert_allclose(family.predict(again, X_valid[:1], MULTI),
                               family.predict(estimator, X_valid, MULTI)[:1], rtol=1e-6)
