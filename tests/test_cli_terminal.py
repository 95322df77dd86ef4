"""The CLI as a person sees it: a real pseudo-terminal, a pipe, an 80-column terminal.

Two small real jobs run through the installed `tabpilot` command: one under a
pseudo-terminal (the live view), one piped (plain lines).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from sklearn.datasets import load_wine

TABPILOT = [sys.executable, "-m", "tabpilot"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    frame = load_wine(as_frame=True).frame  # 178 rows, 3 classes numbered 0-2
    path = tmp_path_factory.mktemp("data") / "wine.csv"
    frame.to_csv(path, index=False)
    return path


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONWARNINGS="ignore", **extra)
    env.pop("NO_COLOR", None)
    return env


@pytest.fixture(scope="module")
def piped(table, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    ws = tmp_path_factory.mktemp("ws")
    done = subprocess.run(
        [*TABPILOT, "run", str(table), "--target", "target", "--time-limit", "15",
         "--algorithms", "lightgbm,linear", "--workers", "2", "--name", "piped-job",
         "-w", str(ws)], capture_output=True, text=True, env=_env(COLUMNS="80"), timeout=120)
    return done, ws


def test_piped_run_prints_phases_inference_and_the_right_final_line(piped) -> None:
    done, _ = piped
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert "job piped-job: 178 rows" in err
    assert re.search(r"problem type: multiclass \(inferred: 3 distinct whole numbers", err)
    assert "override with --problem-type" in err and "metric: Accuracy" in err
    phases = re.findall(r"\] (\w+): ", err)
    assert phases[:3] == ["AnalyzingData", "FeatureEngineering", "ModelTuning"]
    final = [line for line in err.splitlines() if line.startswith("job piped-job: ")][-1]
    assert re.match(r"job piped-job: Completed \(\w+\) in [\d.]+s; [1-9]\d* trials done, "
                    r"\d+ failed; best Accuracy [\d.]+ \(\S+\)$", final), final
    assert "Warning" not in err and "warn(" not in err  # no third-party warnings


def test_candidates_at_80_columns_show_every_name_whole(piped) -> None:
    _, ws = piped
    listed = subprocess.run([*TABPILOT, "candidates", "piped-job", "--json", "-w", str(ws)],
                            capture_output=True, text=True, env=_env(), timeout=60)
    names = [c["CandidateName"] for c in __import__("json").loads(listed.stdout)["Candidates"]
             if c["CandidateStatus"] == "Completed"]
    assert names
    shown = subprocess.run([*TABPILOT, "candidates", "piped-job", "-w", str(ws)],
                           capture_output=True, text=True, env=_env(COLUMNS="80"), timeout=60)
    assert shown.returncode == 0, shown.stderr
    for name in names:
        assert re.search(rf"\b{re.escape(name)}\b", shown.stdout), (name, shown.stdout)
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80
    assert "* the candidate the job hands out" in shown.stdout


def test_live_view_in_a_pseudo_terminal_ends_on_the_final_status(table, tmp_path) -> None:
    child = pexpect.spawn(TABPILOT[0], [*TABPILOT[1:], "run", str(table), "--target", "target",
                                        "--time-limit", "15", "--algorithms", "lightgbm",
                                        "--workers", "2", "--name", "tty-job", "-w",
                                        str(tmp_path / "ws")],
                          env=_env(COLUMNS="100", LINES="40", TERM="xterm"), encoding="utf-8",
                          timeout=120, dimensions=(40, 100))
    child.expect(pexpect.EOF)
    child.close()
    text = ANSI.sub("", child.before)
    assert child.exitstatus == 0, text
    assert "ModelTuning" in text  # a frame of the live view while the search ran
    assert "problem type: multiclass" in text
    # the view's last frame is the final line, not "0 done ... best None"
    assert re.search(r"job tty-job: Completed \(\w+\) in [\d.]+s; [1-9]\d* trials done", text)
    assert "best None" not in text
    assert "tty-job" in text and "Leaderboard (objective: Accuracy)" in text
