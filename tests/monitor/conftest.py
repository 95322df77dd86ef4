"""Tables for the monitoring tests: scikit-learn's bundled breast-cancer table (numbers)
and a generated one with a categorical column, each split into a baseline part and
held-out rows."""

from __future__ import annotations

import subprocess
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


@pytest.fixture
def cli(capsys, monkeypatch):
    """`tabpilot ARGS -w WORKSPACE` in this process, through the CLI's own `main` (its
    error handling and exit codes): a CompletedProcess-like result."""
    from tabpilot.cli import main

    monkeypatch.delenv("TABPILOT_WORKSPACE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    def call(*args: str, workspace: Path) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["tabpilot", *args, "-w", str(workspace)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return call
