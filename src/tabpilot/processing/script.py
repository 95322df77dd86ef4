"""A processing script as a subprocess: its output in the job's log, its time bounded.

The script runs in its own session (process group), so that Stop and
MaxRuntimeInSeconds end it and everything it started: SIGTERM to the group, SIGKILL
after GRACE_SECONDS, as a container is stopped. Its stdout goes straight to the log;
its stderr goes there line by line through this process, which keeps the last non-blank
line for the FailureReason of a script that exits with an error.

The environment is built, not inherited: PATH (with `python`/`python3` leading to the
interpreter given), HOME, LANG, TMPDIR and the request's Environment. The server's own
variables (its store URL, its AWS credentials, its token) never reach the script.
`pip install` inside the job (FrameworkProcessor's runproc.sh installs a requirements.txt
with `python -m pip`) goes to the job's own `python-packages/` (PIP_TARGET, on PYTHONPATH),
never into the server's environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GRACE_SECONDS = 5.0
KEPT_LINES = 20  # stderr lines kept for the ExitMessage
INHERITED = ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


@dataclass
class Outcome:
    exit_code: int | None  # None when the script was ended (stop, deadline)
    stopped_by: str | None  # None, "stop" or "deadline"
    stderr_tail: list[str]  # its last non-blank stderr lines

    @property
    def last_error(self) -> str:
        return self.stderr_tail[-1] if self.stderr_tail else ""


def environment(bin_dir: Path, python: str, given: dict[str, str]) -> dict[str, str]:
    """The script's environment: `bin_dir` (created here, with python and python3 linked
    to `python`) first on PATH, then the system's folders, then the request's variables;
    packages a script installs go beside `bin_dir`, in `python-packages/`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        link = bin_dir / name
        if not link.exists():
            link.symlink_to(python)
    env = {k: os.environ[k] for k in INHERITED if k in os.environ}
    env["PATH"] = os.pathsep.join([str(bin_dir), "/usr/local/bin", "/usr/bin", "/bin"])
    env["PYTHONUNBUFFERED"] = "1"  # prints reach the log as they happen
    packages = str(bin_dir.parent / "python-packages")
    env.update(PIP_TARGET=packages, PYTHONPATH=packages, PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.update(given)
    return env


def run(command: list[str], cwd: Path, env: dict[str, str], log_path: Path,
        deadline: float, stop_requested: Callable[[], bool], poll: float = 0.2) -> Outcome:
    """Run `command` until it exits, Stop is asked, or `deadline` (time.time()) passes."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as sink:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=sink, stderr=subprocess.PIPE,
                                   start_new_session=True)
        tail: deque[str] = deque(maxlen=KEPT_LINES)
        reader = threading.Thread(target=_copy_stderr, args=(process, sink, tail),
                                  daemon=True, name="script-stderr")
        reader.start()
        stopped_by = None
        while process.poll() is None:
            if time.time() >= deadline:
                stopped_by = "deadline"
            elif stop_requested():
                stopped_by = "stop"
            if stopped_by:
                _end(process)
                break
            try:
                process.wait(timeout=poll)
            except subprocess.TimeoutExpired:
                pass
        try:  # what the script left running in the background ends with it
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        reader.join(timeout=GRACE_SECONDS)
    return Outcome(None if stopped_by else process.returncode, stopped_by, list(tail))


def _copy_stderr(process: subprocess.Popen, sink, tail: deque[str]) -> None:
    assert process.stderr is not None
    for raw in iter(process.stderr.readline, b""):
        sink.write(raw)
        sink.flush()
        line = raw.decode("utf-8", "replace").strip()
        if line:
            tail.append(line)


def _end(process: subprocess.Popen) -> None:
    """SIGTERM to the script's process group, SIGKILL after the grace period."""
    for sig, wait in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, GRACE_SECONDS)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
