"""A planted target leak, end to end: warned about before training, and in describe."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tabpilot import AutoML


def _leaky_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Two informative columns, and `closing_flag`: the label, filled in after the outcome,
    with 2 % clerical errors."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = np.where(a - 0.7 * b + 0.6 * rng.normal(size=n) > 0, "yes", "no")
    wrong = rng.permutation(n) < 6
    flag = np.where((y == "yes") != wrong, "C", "N")
    return pd.DataFrame({"a": a, "b": b, "closing_flag": flag, "y": y})


def test_the_cli_warns_of_a_leak_before_training_and_describe_holds_it(tmp_path: Path
                                                                        ) -> None:
    csv = tmp_path / "train.csv"
    _leaky_table().to_csv(csv, index=False)
    env = {k: v for k, v in os.environ.items() if k != "TABPILOT_WORKSPACE"}
    proc = subprocess.run(
        [sys.executable, "-m", "tabpilot.cli", "run", str(csv), "--target", "y",
         "--time-limit", "30", "--name", "leaky", "--max-candidates", "2", "--algorithms",
         "lightgbm,linear", "--workers", "1", "--stacking", "off", "--json",
         "--workspace", str(tmp_path / "ws")],
        capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "possible target leak" in line]
    assert len(warned) == 1, proc.stderr  # one line, and not twice (log and view)
    assert warned[0].startswith("warning (high):") and "'closing_flag'" in warned[0]
    assert warned[0].endswith("unless its value is known when you predict")
    desc = json.loads(proc.stdout)
    leaks = [i for i in desc["DataInsights"] if i["kind"] == "target_leakage"]
    assert [i["columns"] for i in leaks] == [["closing_flag"]]
    evidence = leaks[0]["evidence"]
    assert evidence["score"] >= 0.95 and evidence["plot"]["type"] == "crosstab"


def test_the_job_logs_one_warning_per_high_severity_leak(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="tabpilot.jobs")
    # verbosity=0: nobody watches progress (a server's worker); the log says it
    job = AutoML("y", workspace=tmp_path / "ws", name="leaky-defs", time_limit=30,
                 algorithms=["lightgbm", "linear"], generate_candidates_only=True,
                 verbosity=0)
    job.fit(_leaky_table())
    leaks = [r for r in caplog.records if hasattr(r, "target_leak")]
    assert len(leaks) == 1 and "'closing_flag'" in leaks[0].getMessage()
    assert "\n" not in leaks[0].getMessage()
    assert job.describe()["DataInsights"][0]["columns"] == ["closing_flag"]


def test_the_progress_views_warn_as_soon_as_the_analysis_is_known() -> None:
    from tabpilot.cli_output import LiveView
    from tabpilot.console import ProgressLog
    from tabpilot.jobs.progress import Progress

    insights = [{"kind": "target_leakage", "severity": sev, "message": f"leak {sev}",
                 "fix": "drop it"} for sev in ("high", "medium", "low")] + [
        {"kind": "class_imbalance", "severity": "high", "message": "imbalance"}]
    for make in (LiveView, ProgressLog):
        said: list[str] = []
        view = make(said.append)
        progress = Progress("j1", "InProgress", "AnalyzingData", 0.1, 60.0)
        view(progress)  # analysing: nothing known yet
        assert not [line for line in said if "warning" in line]
        progress.analysis = {"rows": 10, "problem_type": "binary", "metric": "F1",
                             "schema": {}, "insights": insights}
        view(progress)
        view(progress)  # shown once
        lines = [line for line in said if line.startswith("warning")]
        assert lines == ["warning (high): leak high; drop it",
                         "warning (medium): leak medium; drop it"]
