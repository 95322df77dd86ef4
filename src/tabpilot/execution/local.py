"""Local executor: one process per trial, so a crash or a kill harms only that trial.

Trial processes are forked from a clean *fork server* (multiprocessing's "forkserver"
start method, with tabpilot's training modules preloaded), never from the caller: a
caller that has already used OpenMP (any LightGBM or XGBoost prediction in a notebook)
would otherwise hand its children a broken OpenMP runtime, and they would hang.

The job's feature table is written once to a column store in a temporary folder (compact
columns that each trial memory-maps, reading only the rows it trains and validates on),
and the rest of the context is pickled beside it: a trial never holds a copy of the whole
table as pandas holds it. Beside them, the first trial of each preprocessing style
writes the encoded matrix that every later trial of that style maps instead of encoding
its own copy (`execution/sharedtable.py`). The folder goes when the executor shuts down,
and, should the job be killed before that, when a reaper process sees the job gone.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import popen_forkserver, spawn
from multiprocessing.connection import Connection, wait

from tabpilot.execution.base import (
    Executor,
    TrialContext,
    TrialResult,
    TrialTask,
    raw_rows_needed,
)
from tabpilot.execution.sharedtable import FOLDER as SHARED_FOLDER
from tabpilot.execution.sharedtable import Reaper

log = logging.getLogger("tabpilot.execution.local")

TrialFn = Callable[[TrialContext, TrialTask], TrialResult]
PRELOAD = ["tabpilot.execution.preload"]  # the trial module and every family
SHARE_ENV = "TABPILOT_SHARED_ENCODINGS"  # "0": no encoded matrix shared between trials


@dataclass
class _Running:
    task: TrialTask
    process: mp.process.BaseProcess
    conn: Connection
    started: float


_launch_lock = threading.Lock()


def _preparation_without_main(name: str) -> dict:
    data = _original_preparation(name)
    data.pop("init_main_from_path", None)
    data.pop("init_main_from_name", None)
    return data


_original_preparation = spawn.get_preparation_data


class _Popen(popen_forkserver.Popen):
    """The fork server's Popen, minus re-running the caller's main module in the child."""

    def _launch(self, process_obj) -> None:
        with _launch_lock:
            popen_forkserver.spawn.get_preparation_data = _preparation_without_main
            try:
                super()._launch(process_obj)
            finally:
                popen_forkserver.spawn.get_preparation_data = _original_preparation


class _TrialProcess(mp.context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj):
        return _Popen(process_obj)


def _settings() -> dict[str, str]:
    """The caller's TABPILOT_* environment now: the fork server holds the one it was
    started with (the first job of the process), so a trial is handed the current one."""
    return {k: v for k, v in os.environ.items() if k.startswith("TABPILOT_")}


def _child(fn: TrialFn, task: TrialTask, conn: Connection, context_path: str,
           settings: dict[str, str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when trials stop
    for key in [k for k in os.environ if k.startswith("TABPILOT_") and k not in settings]:
        del os.environ[key]
    os.environ.update(settings)
    try:
        with open(context_path, "rb") as f:
            context = pickle.load(f)
        result = fn(context, task)
    except BaseException as exc:  # report, never hang the parent
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        log.debug("trial %s failed:\n%s", task.candidate, traceback.format_exc())
        result = TrialResult(task.candidate, "Failed", failure_reason=last[:500])
    conn.send(result)
    conn.close()


class LocalProcessExecutor(Executor):
    def __init__(self, n_workers: int, trial_fn: TrialFn | None = None) -> None:
        if trial_fn is None:
            from tabpilot.execution.trial import run_trial

            trial_fn = run_trial
        self.n_workers = max(1, n_workers)
        self.trial_fn = trial_fn
        self._running: dict[str, _Running] = {}
        self._mp = mp.get_context("forkserver")
        self._mp.set_forkserver_preload(PRELOAD)
        self._context_dir: str | None = None
        self._reaper: Reaper | None = None

    def warm_up(self) -> None:
        """The fork server imports every family's library (1.5 s on a quiet machine, 4 s
        on a busy one) in a process of its own: started now, that overlaps the data's
        reading and analysis instead of delaying the first trial."""
        try:
            from multiprocessing import forkserver

            forkserver.ensure_running()
        except Exception:  # the first trial starts it, as before
            log.debug("warming up the fork server failed", exc_info=True)

    def start(self, context: TrialContext) -> None:
        self._remove_context()
        self._context_dir = tempfile.mkdtemp(prefix="tabpilot-context-")
        self._reaper = Reaper(self._context_dir)  # before anything large is written there
        if os.environ.get(SHARE_ENV, "1") != "0":  # 0: each trial encodes its own (A/B)
            os.mkdir(os.path.join(self._context_dir, SHARED_FOLDER))
        stored = context.stored(os.path.join(self._context_dir, "table"),
                                keep=raw_rows_needed(context.split))
        with open(self._context_path, "wb") as f:
            pickle.dump(stored, f, protocol=pickle.HIGHEST_PROTOCOL)

    @property
    def _context_path(self) -> str:
        if self._context_dir is None:
            raise RuntimeError("call start(context) before submitting trials")
        return os.path.join(self._context_dir, "context.pkl")

    @property
    def context_dir(self) -> str | None:
        """The folder of the running job's stored table and shared encodings."""
        return self._context_dir

    def _remove_context(self) -> None:
        if self._context_dir is not None:
            shutil.rmtree(self._context_dir, ignore_errors=True)
            self._context_dir = None
        if self._reaper is not None:
            self._reaper.release()
            self._reaper = None

    def free_slots(self) -> int:
        return self.n_workers - len(self._running)

    def submit(self, task: TrialTask) -> None:
        if self.free_slots() <= 0:
            raise RuntimeError("no free slot; call poll() until free_slots() > 0")
        reader, writer = self._mp.Pipe(duplex=False)
        process = _TrialProcess(target=_child,
                                args=(self.trial_fn, task, writer, self._context_path,
                                      _settings()),
                                name=f"trial-{task.candidate}", daemon=True)
        process.start()
        writer.close()
        self._running[task.candidate] = _Running(task, process, reader, time.time())

    def running(self) -> list[str]:
        return list(self._running)

    def poll(self, timeout: float) -> list[TrialResult]:
        if not self._running:
            time.sleep(min(timeout, 0.05))
            return []
        waitables = [r.conn for r in self._running.values()]
        waitables += [r.process.sentinel for r in self._running.values()]
        wait(waitables, timeout=timeout)
        results = []
        now = time.time()
        for name, run in list(self._running.items()):
            result = self._collect(run, now)
            if result is not None:
                results.append(result)
                del self._running[name]
        return results

    def _collect(self, run: _Running, now: float) -> TrialResult | None:
        if run.conn.poll():
            try:
                result = run.conn.recv()
            except (EOFError, OSError):
                result = None
            if result is not None:
                run.process.join(timeout=5)
                if run.process.is_alive():
                    run.process.kill()
                run.conn.close()
                return result
        if not run.process.is_alive():
            run.process.join()
            run.conn.close()
            return TrialResult(run.task.candidate, "Failed",
                               failure_reason=_death_reason(run.process.exitcode),
                               fit_seconds=now - run.started)
        if now >= run.task.hard_deadline:
            self._kill(run)
            return TrialResult(run.task.candidate, "Failed", fit_seconds=now - run.started,
                               failure_reason=f"timed out after {now - run.started:.0f}s "
                                              "and was stopped")
        return None

    def _kill(self, run: _Running) -> None:
        if run.process.is_alive():
            try:
                os.kill(run.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        run.process.join(timeout=5)
        run.conn.close()

    def shutdown(self) -> list[str]:
        names = list(self._running)
        for run in self._running.values():
            self._kill(run)
        self._running.clear()
        self._remove_context()
        return names


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        sig = signal.Signals(-exitcode).name
        if -exitcode == signal.SIGKILL:
            return f"trial process was killed ({sig}), most likely out of memory"
        return f"trial process died from signal {sig}"
    return f"trial process exited with code {exitcode} without a result"
