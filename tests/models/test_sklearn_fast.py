"""Linear models and MLPs predict as scikit-learn does, without its per-call checks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tabpilot.models import FitData, get_family, sklearn_fast
from tabpilot.models.base import all_classes
from tabpilot.tasks import ProblemType

CASES = [(ProblemType.BINARY, 2), (ProblemType.MULTICLASS, 4), (ProblemType.REGRESSION, 0)]


def _checked(model, X, problem_type: ProblemType) -> np.ndarray:
    """scikit-learn's own predictions, through all of its input checks."""
    if problem_type.is_classification:
        return all_classes(model, np.asarray(model.predict_proba(X), dtype=np.float64))
    return np.asarray(model.predict(X), dtype=np.float64)  # a rescaled MLP: its predict


def _data(problem_type: ProblemType, n_classes: int, sparse: bool = False) -> FitData:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(240, 6))
    signal = X[:, 0] - 0.5 * X[:, 1] + rng.normal(scale=0.3, size=240)
    if problem_type is ProblemType.REGRESSION:
        y = 50.0 + 10.0 * signal
    else:
        y = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return FitData(sp.csr_matrix(X) if sparse else X, y, problem_type, n_classes, [],
                   n_threads=1, seed=0)


@pytest.mark.parametrize("family_name", ["linear", "mlp"])
@pytest.mark.parametrize(("problem_type", "n_classes"), CASES)
def test_the_direct_path_equals_scikit_learns(family_name: str, problem_type: ProblemType,
                                              n_classes: int) -> None:
    family = get_family(family_name)
    data = _data(problem_type, n_classes)
    model = family.fit(dict(family.portfolio(problem_type)[0]), data)
    direct_path = getattr(sklearn_fast, family_name)
    inner = getattr(model, "model", model)  # an MLP regressor is wrapped to rescale
    assert direct_path(inner, data.X[:1], problem_type.is_classification) is not None
    for rows in (data.X[:1], data.X[:50]):
        direct = family.predict(model, rows, problem_type)
        checked = _checked(model, rows, problem_type)
        assert direct.shape == checked.shape
        np.testing.assert_allclose(direct, checked, rtol=1e-12, atol=1e-12)


def test_a_sparse_matrix_and_a_fold_missing_a_class_are_handled() -> None:
    family = get_family("linear")
    data = _data(ProblemType.MULTICLASS, 4, sparse=True)
    keep = data.y != 3  # this fold never saw class 3: its column is zeros
    fold = FitData(data.X[keep], data.y[keep], ProblemType.MULTICLASS, 4, [], n_threads=1)
    model = family.fit({"C": 1.0}, fold)
    direct = family.predict(model, data.X[:5], ProblemType.MULTICLASS)
    assert direct.shape == (5, 4) and np.all(direct[:, 3] == 0)
    np.testing.assert_allclose(
        direct, _checked(model, data.X[:5], ProblemType.MULTICLASS),
        rtol=1e-12, atol=1e-12)


def test_input_the_model_was_not_fitted_on_takes_scikit_learns_checks() -> None:
    family = get_family("linear")
    data = _data(ProblemType.BINARY, 2)
    model = family.fit({"C": 1.0}, data)
    with pytest.raises(ValueError, match="features"):
        family.predict(model, data.X[:3, :5], ProblemType.BINARY)
    as_int = family.predict(model, np.rint(data.X[:3]).astype(np.int64), ProblemType.BINARY)
    assert as_int.shape == (3, 2)
    broken = data.X[:3].copy()
    broken[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):  # scikit-learn's clear error, not NaN out
        family.predict(model, broken, ProblemType.BINARY)


def _bag(family, problem_type: ProblemType, data: FitData, depth: int, seeds=(0, 1, 2)):
    """Networks of one architecture, each fitted on its own part of the rows, as folds are."""
    params = dict(family.portfolio(problem_type)[0], depth=depth, width=16)
    out = []
    for seed in seeds:
        rows = np.random.default_rng(seed).random(data.X.shape[0]) < 0.8
        fold = FitData(data.X[rows], data.y[rows], problem_type, data.n_classes, [],
                       n_threads=1, seed=seed)
        out.append(family.fit(params, fold))
    return out


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(("problem_type", "n_classes"), CASES)
def test_a_bag_of_mlps_answers_in_one_pass_as_its_networks_averaged(
        problem_type: ProblemType, n_classes: int, sparse: bool, depth: int) -> None:
    family = get_family("mlp")
    data = _data(problem_type, n_classes, sparse=sparse)
    networks = _bag(family, problem_type, data, depth)
    bag = family.bag(networks, problem_type)
    assert bag is not None
    for rows in (data.X[:1], data.X[:60]):
        each = np.mean([_checked(n, rows, problem_type) for n in networks], axis=0)
        together = bag(rows)
        assert together.shape == each.shape
        np.testing.assert_allclose(together, each, rtol=1e-10, atol=1e-12)


def test_a_bag_it_cannot_stack_or_input_it_does_not_take_goes_network_by_network() -> None:
    family = get_family("mlp")
    data = _data(ProblemType.MULTICLASS, 4)
    shallow, deep = (_bag(family, ProblemType.MULTICLASS, data, d, seeds=(0,))[0]
                     for d in (1, 2))
    assert family.bag([shallow, deep], ProblemType.MULTICLASS) is None  # two shapes
    keep = data.y != 3  # a fold that never saw class 3 has three outputs, not four
    short = family.fit(dict(family.portfolio(ProblemType.MULTICLASS)[0], depth=1, width=16),
                       FitData(data.X[keep], data.y[keep], ProblemType.MULTICLASS, 4, [],
                               n_threads=1))
    assert family.bag([shallow, short], ProblemType.MULTICLASS) is None
    bag = family.bag(_bag(family, ProblemType.MULTICLASS, data, 1), ProblemType.MULTICLASS)
    broken = data.X[:3].copy()
    broken[1, 2] = np.nan
    assert bag(broken) is None and bag(data.X[:3, :5]) is None
    assert bag(np.rint(data.X[:3]).astype(np.int64)) is None
