"""Helpers of the compiled-path tests: a model loaded on the Python path, and the check
that two models give the same predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.artifacts import load


def python_twin(directory: Path, monkeypatch: pytest.MonkeyPatch):
    """The model of `directory` loaded without its compiled path."""
    with monkeypatch.context() as m:
        m.setenv("TABPILOT_COMPILED", "0")
        return load(directory)


def assert_same(model, twin, rows: pd.DataFrame) -> None:
    """Equal probabilities (1e-6) and labels, or values (relative 1e-6)."""
    if model.problem_type.is_classification:
        np.testing.assert_allclose(model.predict_proba(rows).to_numpy(),
                                   twin.predict_proba(rows).to_numpy(), rtol=0, atol=1e-6)
        assert list(model.predict(rows)) == list(twin.predict(rows))
    else:
        np.testing.assert_allclose(model.predict(rows), twin.predict(rows), rtol=1e-6)
