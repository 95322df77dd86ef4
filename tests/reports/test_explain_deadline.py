"""Permutation importance stops at its deadline, so a slow model's report cannot overrun
the job's time limit (reports/explain.py, jobs/reporting.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabpilot.artifacts import Predictor
from tabpilot.data.schema import infer_schema
from tabpilot.features import build_encoder
from tabpilot.metrics import METRICS
from tabpilot.models import FitData, get_family
from tabpilot.reports import explain
from tabpilot.reports.explain import global_importance
from tabpilot.tasks import ProblemType


class _Clock:
    """explain.py's `time`, ticking one second per prediction of the predictor below."""

    now = 1_000.0

    @classmethod
    def time(cls) -> float:
        return cls.now


class _Slow(Predictor):
    """The linear candidate, each call taking one second of the injected clock; counts its
    calls."""

    calls = 0

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        type(self).calls += 1
        _Clock.now += 1.0
        return super()._raw(X)


def _slow_linear() -> tuple[Predictor, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({f"x{i}": rng.normal(size=200) for i in range(8)})
    y = (X["x0"] + X["x1"] > 0).astype(int).to_numpy()
    schema = infer_schema(X)
    family = get_family("linear")
    encoder = build_encoder(schema, family.style).fit(X)
    estimator = family.fit(family.portfolio(ProblemType.BINARY)[0],
                           FitData(encoder.transform(X), y, ProblemType.BINARY, 2, []))
    predictor = _Slow(encoder, "linear", [estimator], ProblemType.BINARY, schema.features,
                      [0, 1])
    return predictor, X, y


def test_permutation_importance_stops_at_its_deadline(monkeypatch) -> None:
    # an injected clock, not wall time: how many columns fit before the deadline is then
    # the same on a loaded machine as on a quiet one
    monkeypatch.setattr(explain, "time", _Clock)
    predictor, X, y = _slow_linear()
    _Slow.calls = 0
    start = _Clock.now
    # the base score ends at start + 1; columns 0-2 start before start + 3.5, column 3 after
    with pytest.raises(TimeoutError, match="after 3 of 8 columns"):
        global_importance(predictor, X, y, METRICS["AUC"], deadline=start + 3.5)
    assert _Slow.calls == 4  # stopped: a full pass makes 9 calls (the base score, 8 columns)
    _Slow.calls = 0
    with pytest.raises(TimeoutError, match="after 0 of 8"):
        global_importance(predictor, X, y, METRICS["AUC"], deadline=_Clock.now - 1)
    assert _Slow.calls == 1  # only the base score
    full = global_importance(predictor, X, y, METRICS["AUC"], deadline=_Clock.now + 9.5)
    assert _Slow.calls == 1 + 9  # the whole pass (9 s of the clock) fits in 9.5 s
    ranked = [r["feature"] for r in full["importance"]]
    assert sorted(ranked) == sorted(X.columns) and set(ranked[:2]) == {"x0", "x1"}
