"""A fold-bagged MLP candidate answers through its stacked bag (models/sklearn_fast.MLPBag):
the same probabilities as its networks one by one, after packaging too, and a view of one
fold (execution/distill.fold_view) answers with that fold's network alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabpilot.artifacts import Predictor, load, save
from tabpilot.data.prepare import prepare
from tabpilot.execution.distill import fold_view
from tabpilot.features import build_encoder
from tabpilot.models import FitData, get_family


def _frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                       "kind": rng.choice(["a", "b", "c"], n)})
    score = df["x1"] - df["x2"] + df["kind"].eq("c")
    df["y"] = np.select([score < -0.5, score < 0.7], ["low", "mid"], "high")
    return df


@pytest.fixture(scope="module")
def bagged() -> tuple[Predictor, pd.DataFrame]:
    prepared = prepare(_frame(), "y")
    family = get_family("mlp")
    encoder = build_encoder(prepared.schema, family.style).fit(prepared.X)
    X = encoder.transform(prepared.X)
    params = dict(family.portfolio(prepared.problem_type)[0], width=24)
    folds = np.arange(len(prepared.y)) % 3
    networks = [family.fit(params, FitData(X[folds != k], prepared.y[folds != k],
                                           prepared.problem_type, 3, [], seed=k))
                for k in range(3)]
    predictor = Predictor(encoder, "mlp", networks, prepared.problem_type,
                          prepared.schema.features, prepared.classes)
    return predictor, prepared.X


def _one_by_one(predictor: Predictor, rows: pd.DataFrame) -> np.ndarray:
    family = get_family(predictor.family)
    X = predictor.encoder.transform(rows)
    out = np.mean([family.predict(e, X, predictor.problem_type)
                   for e in predictor.estimators], axis=0)
    return out / out.sum(axis=1, keepdims=True)


def test_the_bag_answers_in_one_pass_as_its_networks_do(bagged, tmp_path) -> None:
    predictor, X = bagged
    for rows in (X.iloc[:1], X.iloc[:80]):
        np.testing.assert_allclose(predictor.raw_predict(rows), _one_by_one(predictor, rows),
                                   rtol=1e-9, atol=1e-12)
    assert predictor.__dict__["bag_"][1] is not None  # the stacked path answered
    save(predictor, {"candidate": "mlp-bag", "family": "mlp"}, tmp_path / "model")
    loaded = load(tmp_path / "model")
    np.testing.assert_allclose(loaded.predictor.raw_predict(X.iloc[:5]),
                               predictor.raw_predict(X.iloc[:5]),
                               rtol=1e-12, atol=1e-12)
    assert loaded.predictor.__dict__["bag_"][1] is not None  # made again after loading


def test_a_fold_view_answers_with_its_own_network(bagged) -> None:
    predictor, X = bagged
    predictor.raw_predict(X.iloc[:1])  # the bag of three is made and kept
    view = fold_view(predictor, 1, 3)
    alone = Predictor(predictor.encoder, "mlp", [predictor.estimators[1]],
                      predictor.problem_type, predictor.features, predictor.classes)
    np.testing.assert_allclose(view.raw_predict(X.iloc[:20]), alone.raw_predict(X.iloc[:20]),
                               rtol=1e-12, atol=1e-12)
    assert not np.allclose(view.raw_predict(X.iloc[:20]), predictor.raw_predict(X.iloc[:20]))
