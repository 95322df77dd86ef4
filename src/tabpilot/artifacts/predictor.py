"""Fitted pipelines: raw rows in, probabilities or values and labels out.

`Predictor` is one candidate (encoder -> estimator(s)); any other kind of fitted model
(an ensemble of predictors) implements `raw_predict` on the same base and is packaged,
served and explained the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.artifacts.validate import MissingColumnsError, missing_columns_message
from tabpilot.errors import DataError
from tabpilot.features.columns import SMALL
from tabpilot.features.encoder import TabularEncoder
from tabpilot.metrics import labels_from_proba
from tabpilot.models import get_family
from tabpilot.tasks import ProblemType

# One request's memo (a predictor's call, with its members' nested calls): the members of
# an ensemble sharing an encoder (artifacts/compiled.attach) encode the frame once, and a
# candidate a composite holds twice (in a stack inside an ensemble, and beside it: one
# object once loaded, package._read) answers once.
_REQUEST: ContextVar[dict | None] = ContextVar("tabpilot_request", default=None)
MEMO_VALUES = 1 << 20  # larger results are not kept for the request (memory of batches)
COLUMN_SET = object()  # the memo's key for a request frame's set of column names


def request_memo() -> dict | None:
    """The current request's memo, None outside a `raw_predict` call."""
    return _REQUEST.get()


def once_a_request(owner: object, X: pd.DataFrame, width: int,
                   compute: Callable[[pd.DataFrame], Any]) -> Any:
    """`compute(X)`, computed once per request for `owner` (an encoder's encoding, a
    predictor's answer) and this frame, when it holds at most MEMO_VALUES values (`width`
    per row)."""
    memo = _REQUEST.get()
    if memo is None or len(X) * width > MEMO_VALUES:
        return compute(X)
    key = (id(owner), id(X))
    hit = memo.get(key)
    if hit is not None and hit[0] is X:  # the frame is held, so its id is not reused
        return hit[1]
    out = compute(X)
    memo[key] = (X, out)
    return out


@contextmanager
def _request() -> Iterator[None]:
    if _REQUEST.get() is not None:  # a member's call inside its ensemble's: the same request
        yield
        return
    token = _REQUEST.set({})
    try:
        yield
    finally:
        _REQUEST.reset(token)


class BasePredictor(ABC):
    problem_type: ProblemType
    features: list[str]
    classes: list | None
    threshold: float | None

    @abstractmethod
    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities (rows, classes) or regression values (rows,), columns checked."""

    def check_columns(self, X: pd.DataFrame) -> None:
        # a set, made once per request: an ensemble's members each check the same frame
        present = once_a_request(COLUMN_SET, X, 0, lambda frame: frozenset(frame.columns))
        missing = [c for c in self.features if c not in present]
        if missing:
            raise MissingColumnsError(missing_columns_message(missing))

    def raw_predict(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities (rows, classes) or regression values (rows,). Inside a composite's
        call the answer is kept for the request: its callers only read it."""
        self.check_columns(X)
        with _request():
            return once_a_request(self, X, len(self.classes or []) or 1, self._answer)

    def _answer(self, X: pd.DataFrame) -> np.ndarray:
        raw = self._raw(X)
        if self.problem_type.is_classification:  # float32 boosters sum to 1 only roughly
            raw = raw / raw.sum(axis=1, keepdims=True)
        return raw

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        raw = self.raw_predict(X)
        if self.problem_type is ProblemType.REGRESSION:
            return raw
        return self.labels_from_proba(raw)

    def labels_from_index(self, proba: np.ndarray) -> np.ndarray:
        """Class indices, applying the tuned decision threshold for binary problems."""
        return labels_from_proba(proba, self.threshold)

    def labels_from_proba(self, proba: np.ndarray) -> np.ndarray:
        """Class labels, applying the tuned decision threshold for binary problems."""
        return np.asarray(self.classes, dtype=object)[self.labels_from_index(proba)]

    def predict_proba(self, X: pd.DataFrame) -> pd.DataFrame:
        if self.problem_type is ProblemType.REGRESSION:
            raise DataError("predict_proba is for classification; this model does regression, "
                            "use predict")
        return pd.DataFrame(self.raw_predict(X), columns=list(self.classes or []),
                            index=X.index)


@dataclass
class Predictor(BasePredictor):
    """One candidate pipeline. Several estimators are averaged (fold bagging)."""

    encoder: TabularEncoder
    family: str
    estimators: list[Any]
    problem_type: ProblemType
    features: list[str]
    classes: list | None = None
    threshold: float | None = None

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        compiled = self.__dict__.get("compiled_")  # attached by package.load (artifacts/compiled)
        if compiled is not None:
            return compiled.raw(X)
        return self.python_raw(X)

    def python_raw(self, X: pd.DataFrame) -> np.ndarray:
        """The reference path: the encoder, then each estimator's own predict."""
        encoder = self.encoder
        encoded = once_a_request(encoder, X, encoder.n_features_out_, self._encode)
        family = get_family(self.family)
        if len(self.estimators) > 1:
            out = self._bag(family)
            out = None if out is None else out(encoded)
            if out is not None:
                return out
        outs = [family.predict(est, encoded, self.problem_type) for est in self.estimators]
        return outs[0] if len(outs) == 1 else np.mean(outs, axis=0)

    def _bag(self, family: Any) -> Callable[[Any], np.ndarray | None] | None:
        """The family's one-pass mean of this bag (models/base.ModelFamily.bag), made
        once for these estimators (a fold's view of the bag has others of its own)."""
        made = self.__dict__.get("bag_")
        if made is None or made[0] is not self.estimators:
            made = self.__dict__["bag_"] = (self.estimators,
                                            family.bag(self.estimators, self.problem_type))
        return made[1]

    def _encode(self, X: pd.DataFrame) -> Any:
        """The encoder's matrix. A few rows of a dense encoding (no text) go through its
        row encoder (artifacts/compiled/rows.py): the same matrix, value by value, without
        the per-column numpy set-up that costs a linear model or an MLP most of its answer
        to one row."""
        encoder = self.encoder
        if len(X) > SMALL or not isinstance(encoder, TabularEncoder) or encoder.text:
            return encoder.transform(X)
        rows = self.__dict__.get("rows_")
        if rows is None:
            from tabpilot.artifacts.compiled.rows import RowEncoder  # it imports this module

            rows = self.__dict__["rows_"] = RowEncoder(encoder)
        return rows.encode(X)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("compiled_", "rows_", "bag_")}


def as_frame(data: Any) -> pd.DataFrame:
    """Accept a DataFrame, one row as a dict, or a list of dicts."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        return pd.DataFrame([data])
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(data)
    raise DataError(f"cannot predict on a {type(data).__name__}; pass a DataFrame, a dict "
                    "(one row) or a list of dicts")
