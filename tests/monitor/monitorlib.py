"""Helpers of the monitoring tests (a module of its own: `conftest` is a name every test
folder has)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def mixed_table(n: int, seed: int = 0) -> pd.DataFrame:
    """Integral, Fractional and String features, a few missing values."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": rng.integers(18, 90, n),
        "income": rng.lognormal(10, 0.5, n).round(2),
        "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
        "score": rng.normal(0, 1, n),
    })
    df.loc[rng.random(n) < 0.05, "income"] = np.nan
    return df


def run_cli(*args: str, workspace: Path) -> subprocess.CompletedProcess[str]:
    """`tabpilot ARGS -w WORKSPACE` in its own process: its exit code and output as a user
    sees them (each costs a few seconds of imports: the tests use it for bad input)."""
    env = {k: v for k, v in os.environ.items() if k != "TABPILOT_WORKSPACE"}
    env["COLUMNS"] = "80"
    return subprocess.run([sys.executable, "-m", "tabpilot.cli", *args, "-w", str(workspace)],
                          capture_output=True, text=True, timeout=120, env=env)



def assert_one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
