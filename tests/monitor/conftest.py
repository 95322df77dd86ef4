"""Tables for the monitoring tests: scikit-learn's bundled breast-cancer table (numbers)
and a generated one with a categorical column, each split into a baseline part and
held-out rows."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from monitorlib import mixed_table
from sklearn.datasets import load_breast_cancer

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))  # servinglib: real servers


@pytest.fixture(scope="session")
def cancer() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(400 baseline rows, 169 held-out rows) of the 30 numeric features, target left out."""
    frame = load_breast_cancer(as_frame=True).frame.drop(columns="target")
    held = frame.sample(169, random_state=0)
    return frame.drop(held.index).reset_index(drop=True), held.reset_index(drop=True)


@pytest.fixture(scope="session")
def mixed() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = mixed_table(3000)
    return frame.iloc[:2500].reset_index(drop=True), frame.iloc[2500:].reset_index(drop=True)

