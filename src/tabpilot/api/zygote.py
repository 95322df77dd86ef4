"""A warm parent for training-job workers: a process that has imported a training worker's
modules once (xgboost, pandas, the store: ~2 s of imports) and forks a worker per job on
request, so a training job starts in milliseconds instead of a fresh interpreter's seconds
(issue 21's goal: a training job costs at most 1.2 x + 1 s of a plain `xgboost.train`;
`python -m bench.training_overhead --api`).

    python -m tabpilot.api.zygote        (started by the server, never by hand)

The protocol is one JSON line per request on the zygote's stdin, `{"argv": [...], "env":
{...}, "cwd": ..., "log": ...}`, answered by one line on its stdout, `{"pid": N}` or
`{"error": "..."}`. The forked worker starts its own session (a Stop kills its group, as
for a worker started any other way), writes to its log, takes the caller's environment
and folder as they are at the request, and runs `api/worker.py`'s `main(argv)`. The zygote
ignores SIGCHLD, so the kernel reaps a finished worker at once and a pid that is gone
means a worker that has ended (the job liveness check). It exits when the caller's end of
its stdin closes: a server that ends, however it ends, takes its zygote with it.

It preloads imports only: no thread, no OpenMP runtime, no open store is ever started in
it, so a forked child is as clean as a fresh interpreter. `TABPILOT_WORKER_ZYGOTE=0`
turns it off (every worker is then a fresh `python -m tabpilot.api.worker`), and any
failure to start or ask it falls back to that too.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

log = logging.getLogger("tabpilot.api.zygote")

ENV = "TABPILOT_WORKER_ZYGOTE"  # "0": no zygote, a fresh interpreter per worker
KINDS = ("training",)  # the workers it forks: short jobs, where the start is the cost
PRELOAD = ("tabpilot.api.worker", "tabpilot.api.context", "tabpilot.api.training",
           "tabpilot.training.job", "tabpilot.training.xgboost_builtin",
           "tabpilot.training.progress", "xgboost", "pandas", "tabpilot.store")


class Zygote:
    """The caller's handle on one zygote process (started on first use)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._broken = False

    def launch(self, argv: list[str], env: dict[str, str], log_path: Path) -> int | None:
        """The forked worker's pid, or None when the zygote cannot serve (the caller then
        starts a fresh interpreter)."""
        if self._broken or os.environ.get(ENV, "1") == "0" or os.name != "posix":
            return None
        with self._lock:
            try:
                process = self._running()
                assert process.stdin is not None and process.stdout is not None
                request = {"argv": argv, "env": env, "cwd": os.getcwd(), "log": str(log_path)}
                process.stdin.write(json.dumps(request) + "\n")
                process.stdin.flush()
                answer = json.loads(process.stdout.readline() or "{}")
            except Exception:  # noqa: BLE001 - fall back to a fresh interpreter, said once
                log.warning("the worker zygote failed; workers start as fresh processes",
                            exc_info=True)
                self._broken = True
                self.close()
                return None
        if "pid" not in answer:
            log.warning("the worker zygote refused a worker: %s", answer.get("error"))
            return None
        return int(answer["pid"])

    def warm(self) -> None:
        """Start the zygote now (a server does at its start), so its imports are done by
        the first training job; nothing when it is turned off."""
        if os.environ.get(ENV, "1") != "0" and os.name == "posix":
            with self._lock:
                try:
                    self._running()
                except OSError:
                    log.warning("could not start the worker zygote", exc_info=True)

    def _running(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tabpilot.api.zygote"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                start_new_session=True)
            threading.Thread(target=self._process.wait, daemon=True,
                             name="reap-zygote").start()
        return self._process

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()


ZYGOTE = Zygote()  # one per process: the server's (a tuning worker has its own)


def _fork(request: dict) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the worker: its own session, log, environment and folder
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # its own children are its to reap
        fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.close(null)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own streams
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        from tabpilot.api import worker

        sys.argv = [worker.__file__, *request["argv"]]
        worker.main(request["argv"])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the worker's own log says why
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main() -> None:
    import importlib

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # finished workers are reaped at once
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller's Ctrl-C is not for it
    for name in PRELOAD:
        importlib.import_module(name)
    for line in sys.stdin:
        try:
            answer = {"pid": _fork(json.loads(line))}
        except Exception as exc:  # noqa: BLE001 - one bad request, the caller falls back
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
