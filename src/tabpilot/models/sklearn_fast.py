"""Predictions of fitted linear models and MLPs without scikit-learn's per-call checks.

One request to an ensemble calls `predict_proba` on every fold model of every member, and
for one row scikit-learn's input validation (dtype, finiteness, feature count, dataframe
detection) costs several times the arithmetic: 0.05-0.07 ms a call, 0.25-0.35 ms for a
5-fold bag. The encoder has already produced a float64 matrix of the width the model was
fitted on, so these functions do the same arithmetic as scikit-learn's own predict
(`decision_function`, `_forward_pass_fast`) on it directly. Any other input takes
scikit-learn's path.

A k-fold bag of MLPs of one architecture answers in one pass (`MLPBag`): the first
layers' weights side by side make one matrix product, the deeper layers one batched
product each, where k separate passes cost k times numpy's per-call overhead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.neural_network._base import ACTIVATIONS
from sklearn.utils.extmath import safe_sparse_dot, softmax


def checked(X: Any, estimator: Any) -> bool:
    """Whether `X` is what the estimator was fitted on: 2-D finite float64 of its width,
    dense or CSR, with nothing left for scikit-learn's checks to convert or reject."""
    return _plain(X, getattr(estimator, "n_features_in_", None))


def _plain(X: Any, width: int | None) -> bool:
    if getattr(X, "ndim", 0) != 2 or X.shape[1] != width or X.dtype != np.float64:
        return False
    if isinstance(X, np.ndarray):
        return bool(np.isfinite(X).all())
    csr = sp.isspmatrix_csr(X) or isinstance(X, sp.csr_array)
    return csr and bool(np.isfinite(X.data).all())


def linear(estimator: Any, X: Any, classification: bool) -> np.ndarray | None:
    """LogisticRegression's probabilities or Ridge's values; None where not applicable."""
    if not checked(X, estimator):
        return None
    scores = safe_sparse_dot(X, estimator.coef_.T, dense_output=True) + estimator.intercept_
    if not classification:
        return np.asarray(scores, dtype=np.float64).ravel()
    if len(estimator.classes_) <= 2:  # one column: the positive class's score
        return _both_classes(expit(scores.ravel()))
    return softmax(np.asarray(scores, dtype=np.float64), copy=False)


def mlp(estimator: Any, X: Any, classification: bool) -> np.ndarray | None:
    """MLPClassifier's probabilities or MLPRegressor's values; None where not applicable."""
    forward = getattr(estimator, "_forward_pass_fast", None)
    if forward is None or not checked(X, estimator):
        return None
    out = forward(X, check_input=False)
    if not classification:
        return out[:, 0] if out.shape[1] == 1 else out
    if estimator.n_outputs_ == 1:  # binary: the positive class's probability
        return _both_classes(out.ravel())
    return out


class MLPBag:
    """A bag of fitted MLPs of one architecture, as one stacked network: the mean of their
    outputs (probabilities, or values in the original units) in one forward pass."""

    def __init__(self, networks: list[Any], scales: list[tuple[float, float]] | None) -> None:
        first = networks[0]
        self.width = first.n_features_in_
        self.hidden = ACTIVATIONS[first.activation]
        self.output = first.out_activation_
        # (std, mean) of each network's standardised target, as (k, 1) columns
        self.scales = None if scales is None else np.array(scales).T[:, :, None]
        self.k = len(networks)
        # layer 1: (inputs, k * width); deeper layers: (k, width_in, width_out)
        self.first_w = np.concatenate([n.coefs_[0] for n in networks], axis=1)
        self.first_b = np.concatenate([n.intercepts_[0] for n in networks])
        self.deeper = [(np.stack([n.coefs_[i] for n in networks]),
                        np.stack([n.intercepts_[i] for n in networks])[:, None, :])
                       for i in range(1, first.n_layers_ - 1)]

    @classmethod
    def of(cls, estimators: list[Any], classification: bool) -> MLPBag | None:
        """The stacked bag, or None where its networks differ in shape, activation or
        classes (a fold that missed a class) and each must answer on its own."""
        scales = None
        if not classification:
            if not all(hasattr(e, "model") for e in estimators):
                return None
            scales = [(e.std, e.mean) for e in estimators]
            estimators = [e.model for e in estimators]
        first = estimators[0]
        if first.activation not in ACTIVATIONS:
            return None
        shape = [c.shape for c in first.coefs_]
        for net in estimators:
            if [c.shape for c in net.coefs_] != shape or net.activation != first.activation \
                    or net.out_activation_ != first.out_activation_:
                return None
            if classification and not np.array_equal(net.classes_, first.classes_):
                return None
        return cls(estimators, scales)

    def __call__(self, X: Any) -> np.ndarray | None:
        """The bag's mean output for `X`; None where `X` is not what the networks were
        fitted on (scikit-learn's path then checks and answers it)."""
        if not _plain(X, self.width):
            return None
        a = safe_sparse_dot(X, self.first_w, dense_output=True) + self.first_b
        a = a.reshape(X.shape[0], self.k, -1).transpose(1, 0, 2)  # (k, rows, width)
        for w, b in self.deeper:
            self.hidden(a)
            a = np.matmul(a, w)
            a += b
        if self.scales is not None:  # identity output on a standardised target
            return (a[:, :, 0] * self.scales[0] + self.scales[1]).mean(axis=0)
        if self.output == "softmax":
            a = np.exp(a - a.max(axis=2, keepdims=True))
            a /= a.sum(axis=2, keepdims=True)
        else:
            ACTIVATIONS[self.output](a)
        mean = a.mean(axis=0)
        return _both_classes(mean.ravel()) if mean.shape[1] == 1 else mean


def _both_classes(positive: np.ndarray) -> np.ndarray:
    """(rows, 2) probabilities from the positive class's, as scikit-learn returns them."""
    return np.column_stack([1.0 - positive, positive])
