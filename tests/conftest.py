"""Fixtures every test folder may use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# a developer's own settings never redirect the tests (cluster tests set their own)
for _variable in ("TABPILOT_STORE", "TABPILOT_EXECUTOR", "TABPILOT_ARTIFACTS",
                  "TABPILOT_ARTIFACTS_CACHE",
                  "TABPILOT_MLFLOW_URI"):
    os.environ.pop(_variable, None)


@pytest.fixture
def cli(capsys, monkeypatch):
    """`tabpilot ARGS -w WORKSPACE` in this process, through the CLI's own `main` (its
    error handling and exit codes): a CompletedProcess-like result."""
    from tabpilot.cli import main

    monkeypatch.delenv("TABPILOT_WORKSPACE", raising=False)
    # the global options export these for the processes a command starts; in this process
    # they must not outlive the test: setenv records the value to restore (even "unset"),
    # which a delenv of an unset variable would not
    for variable in ("TABPILOT_MLFLOW_URI", "TABPILOT_STORE", "TABPILOT_EXECUTOR",
                     "TABPILOT_ARTIFACTS"):
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)
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
