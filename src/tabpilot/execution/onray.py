"""Ray executor: each trial is a Ray task, run on whichever node of the cluster has room.

The job stays where it was started: Optuna's ask/tell, the store, the stack, ensemble and
reports run in the job's process; only trials go to the cluster. The contract is the
local executor's (`execution/base.py`): `submit` never blocks, `poll` never raises.

- Data: the job's feature table is written once as the local executor's column store
  (`execution/columnar.py`), read into plain numpy arrays and `ray.put` once per job.
  Every trial is handed the ObjectRef, not the arrays: Ray gives each worker the arrays
  read-only from its node's shared object store (one copy per node, none per trial), and
  a trial takes only its rows from them, as it would from the memory-mapped files.
- Resources: a trial asks for `num_cpus` = the job's thread count per trial (passed to the
  library exactly as the local executor passes it: LightGBM's `num_threads`, XGBoost's
  `nthread`...) and a `memory` request (a few times the table, at most a node's share per
  CPU, so a request never makes a trial unschedulable). Slots: `--workers`, else as many
  trials as the cluster has CPUs for, looked up again as nodes come and go.
- Faults: a trial past its hard deadline is cancelled with `ray.cancel(force=True)`
  (its worker process is killed); a worker or node that dies, a memory kill by Ray's
  monitor, or any Ray error comes back from `poll` as a Failed result naming the cause.
  Trials are never retried (`max_retries=0`): a retry would run past the trial's deadline.
- Files: `execution/handback.py` is the one place that passes a trial's files back.
  With an artifact store that is not the workspace (`--artifacts s3://...`), the trial
  writes in a scratch folder on its node and puts its candidate folder under
  `jobs/<job>/trials/<trial>` (with each file's sha256); the job fetches and verifies it
  before recording the trial. With the default store the files stay at the task's path
  (nodes must then share the workspace's path).

Addresses: `ray://HOST:PORT` connects to a running cluster's client server (`ray start
--head` listens on 10001); `ray` uses `$RAY_ADDRESS` when set, else starts a Ray on this
machine for the process. Every node must run the same tabpilot install (the trial's code
is imported there, not shipped).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tabpilot.artifacts.store import ArtifactStore
from tabpilot.errors import ExecutorUnavailableError, MissingDependencyError
from tabpilot.execution.base import (
    Executor,
    TrialContext,
    TrialResult,
    TrialTask,
    raw_rows_needed,
)
from tabpilot.execution.columnar import ColumnStore, LoadedColumns
from tabpilot.execution.handback import HandBack, plan, receive, run_there
from tabpilot.execution.local import TrialFn, _settings

log = logging.getLogger("tabpilot.execution.onray")

CONNECT_SECONDS_ENV = "TABPILOT_RAY_CONNECT_SECONDS"  # how long connecting may take
CONNECT_SECONDS = 60.0
TRIAL_MEMORY_ENV = "TABPILOT_RAY_TRIAL_MEMORY_MB"  # each trial's memory request, if set
MIN_TRIAL_MEMORY = 256 * 2**20
TABLE_MEMORY_FACTOR = 3  # a trial's rows, their encoding and the model, against the table
RESOURCES_EVERY_S = 10.0  # how often the cluster's CPUs are looked up again
_connected: list[str | None] = []  # the address this process's Ray was connected to by us


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray (the Ray executor)", "ray") from None
    return ray


def connect(address: str | None) -> Any:
    """This process connected to Ray at `address` (None: `$RAY_ADDRESS`, else a Ray
    started here); the `ray` module. A cluster that does not answer within
    `$TABPILOT_RAY_CONNECT_SECONDS` (60) is one ExecutorUnavailableError line."""
    ray = import_ray()
    if ray.is_initialized():
        if not _connected or _connected[0] == address:
            return ray  # ours from an earlier job, or the caller's own (ray.init in a notebook)
        ray.shutdown()
        _connected.clear()
    target = address or os.environ.get("RAY_ADDRESS") or None
    shown = target or "a Ray started on this machine"
    if target is not None:
        _check_reachable(target)
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING,
                              "ignore_reinit_error": True}
    if target is None:
        kwargs["include_dashboard"] = False
    seconds = float(os.environ.get(CONNECT_SECONDS_ENV) or CONNECT_SECONDS)
    outcome: list[BaseException | None] = []
    give_up = time.monotonic() + seconds

    def init() -> None:
        while True:
            try:
                ray.init(address=address, **kwargs)
                outcome.append(None)
                return
            except ConnectionError as exc:
                # Ray Client's server starts a server per client; on a busy head that
                # start can fail once and succeed when asked again
                if time.monotonic() + 5 > give_up:
                    outcome.append(exc)
                    return
                log.info("connecting to Ray at %s failed (%s); trying again", shown, exc)
                if ray.is_initialized():  # half connected: start afresh
                    ray.shutdown()
                time.sleep(1.0)
            except BaseException as exc:  # handed to the caller's thread
                outcome.append(exc)
                return

    if target is None:  # a local start: in this thread (Ray installs signal handlers)
        init()
    else:
        # "SIGTERM handler is not set ...": true of a connecting thread, and no news here
        quiet = logging.getLogger("ray._private.worker")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        thread = threading.Thread(target=init, name="ray-connect", daemon=True)
        thread.start()
        thread.join(seconds)
        quiet.setLevel(level)
        if thread.is_alive():
            raise ExecutorUnavailableError(
                f"the Ray cluster at {shown} did not answer within {seconds:g}s; check that "
                f"it runs (`ray status`) or raise ${CONNECT_SECONDS_ENV}")
    if outcome and outcome[0] is not None:
        exc = outcome[0]
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ExecutorUnavailableError(f"could not connect to Ray at {shown}: "
                                       f"{type(exc).__name__}: {first}") from None
    _connected[:] = [address]
    return ray


def _check_reachable(target: str) -> None:
    """A ray:// or HOST:PORT address that accepts TCP connections (5 s at most): a wrong
    host or port fails here at once instead of in Ray's retries."""
    rest = target.partition("://")[2] if "://" in target else target
    host, _, port = rest.rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        return  # Ray's own forms ("auto", a bare host): Ray judges them
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ExecutorUnavailableError(
            f"cannot reach the Ray cluster at {target} ({exc.strerror or exc}); start it "
            "with `ray start --head` or fix --executor / $TABPILOT_EXECUTOR") from None


def _run_trial(context: TrialContext, task: TrialTask, trial_fn: TrialFn,
               settings: dict[str, str], handback: HandBack | None = None) -> TrialResult:
    """A trial in a Ray worker: the job's TABPILOT_* settings of now, the trial, its files
    handed back. An error is a Failed result, never an exception (a worker is reused)."""
    import traceback

    for key in [k for k in os.environ if k.startswith("TABPILOT_") and k not in settings]:
        del os.environ[key]
    os.environ.update(settings)

    def run(task: TrialTask) -> TrialResult:
        try:
            return trial_fn(context, task)
        except BaseException as exc:
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            return TrialResult(task.candidate, "Failed", failure_reason=last[:500])

    return run_there(task, handback, run)


@dataclass
class _Running:
    task: TrialTask  # as the job gave it (its output_dir maybe relative)
    ref: Any  # the ObjectRef of the trial's result
    started: float


class RayExecutor(Executor):
    def __init__(self, n_workers: int | None = None, address: str | None = None,
                 trial_fn: TrialFn | None = None) -> None:
        """`n_workers`: trials at once (None: one per `num_cpus` CPUs of the cluster);
        `address`: ray://HOST:PORT, or None for `$RAY_ADDRESS` / a Ray started here."""
        if trial_fn is None:
            from tabpilot.execution.trial import run_trial

            trial_fn = run_trial
        self.ray = connect(address)
        self.address = address
        self.trial_fn = trial_fn
        self.n_workers = None if n_workers is None else max(1, n_workers)
        self._running: dict[str, _Running] = {}
        self._refused: list[TrialResult] = []  # submitted, failed before reaching Ray
        self._context: Any = None  # the ObjectRef of the shared context
        self._num_cpus = 1
        self._memory = MIN_TRIAL_MEMORY
        self._slots, self._slots_at = 1, 0.0
        self._remote = self.ray.remote(max_retries=0, retry_exceptions=False)(_run_trial)
        self._artifacts: ArtifactStore | None = None
        self._workspace: Path | None = None

    def hand_back_through(self, artifacts: ArtifactStore, workspace: Path) -> None:
        self._artifacts, self._workspace = artifacts, Path(workspace).resolve()

    # -- the job's data ---------------------------------------------------------------
    def start(self, context: TrialContext) -> None:
        self._context = None
        folder = tempfile.mkdtemp(prefix="tabpilot-context-")
        try:
            stored = context.stored(os.path.join(folder, "table"),
                                    keep=raw_rows_needed(context.split))
            table = stored.table if isinstance(stored.table, LoadedColumns) else \
                ColumnStore(str(stored.table)).loaded()
            table_bytes = table.nbytes
            self._context = self.ray.put(replace(stored, table=table))  # once per job
            del table
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        nodes = self._nodes()
        biggest = max((n["CPU"] for n in nodes), default=1.0)
        self._num_cpus = max(1, min(context.n_threads, int(biggest) or 1))
        self._memory = self._trial_memory(table_bytes, nodes)
        self._slots_at = 0.0
        log.info("Ray executor: %d node(s), %d CPU(s) and %.0f MB per trial, table %.0f MB "
                 "in the object store", len(nodes), self._num_cpus, self._memory / 2**20,
                 table_bytes / 2**20)

    def _nodes(self) -> list[dict[str, float]]:
        """The alive nodes' CPU and memory resources."""
        try:
            nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        except Exception:  # an older client without nodes(): the cluster as one node
            nodes = [self.ray.cluster_resources()]
        return [{"CPU": float(n.get("CPU", 0)), "memory": float(n.get("memory", 0))}
                for n in nodes if n.get("CPU", 0)]

    def _trial_memory(self, table_bytes: int, nodes: list[dict[str, float]]) -> int:
        """A trial's memory request: $TABPILOT_RAY_TRIAL_MEMORY_MB, else a few times the
        table; never more than a node holds per trial, so every CPU can run one."""
        given = os.environ.get(TRIAL_MEMORY_ENV)
        wanted = int(float(given) * 2**20) if given else \
            max(MIN_TRIAL_MEMORY, TABLE_MEMORY_FACTOR * table_bytes)
        shares = [n["memory"] * self._num_cpus / n["CPU"] for n in nodes if n["memory"]]
        return int(min([wanted, *shares])) if shares else wanted

    # -- slots --------------------------------------------------------------------------
    def free_slots(self) -> int:
        return self._capacity() - len(self._running)

    def _capacity(self) -> int:
        if self.n_workers is not None:
            return self.n_workers
        now = time.monotonic()
        if now - self._slots_at >= RESOURCES_EVERY_S:
            self._slots_at = now
            try:
                cpus = float(self.ray.cluster_resources().get("CPU", 0))
                self._slots = max(1, int(cpus // self._num_cpus))
            except Exception:  # the cluster is busy answering: keep the last count
                log.debug("reading the cluster's resources failed", exc_info=True)
        return self._slots

    def submit(self, task: TrialTask) -> None:
        if self._context is None:
            raise RuntimeError("call start(context) before submitting trials")
        if self.free_slots() <= 0:
            raise RuntimeError("no free slot; call poll() until free_slots() > 0")
        # the worker's working folder is not the job's: the path it writes must be absolute
        sent = replace(task, output_dir=os.path.abspath(task.output_dir))
        try:  # a teacher that cannot be published: the trial fails, the job goes on
            handback = plan(sent, self._artifacts, self._workspace)
        except Exception as exc:
            self._refused.append(TrialResult(task.candidate, "Failed", failure_reason=(
                f"the distillation's teacher could not be published for the cluster: "
                f"{(str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]}")))
            return
        ref = self._remote.options(
            num_cpus=self._num_cpus, memory=self._memory,
            name=f"trial-{task.candidate}").remote(self._context, sent, self.trial_fn,
                                                   _settings(), handback)
        self._running[task.candidate] = _Running(task, ref, time.time())

    def running(self) -> list[str]:
        return [*self._running, *(r.candidate for r in self._refused)]

    # -- results ------------------------------------------------------------------------
    def poll(self, timeout: float) -> list[TrialResult]:
        if self._refused:
            refused, self._refused = self._refused, []
            return refused
        if not self._running:
            time.sleep(min(timeout, 0.05))
            return []
        results: list[TrialResult] = []
        try:
            refs = [run.ref for run in self._running.values()]
            ready, _ = self.ray.wait(refs, num_returns=1, timeout=timeout)
            if ready:
                ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        except Exception:  # the cluster did not answer now: look again at the next poll
            log.warning("waiting for Ray trials failed", exc_info=True)
            ready = []
        done = set(ready)
        now = time.time()
        for name, run in list(self._running.items()):
            if run.ref in done:
                results.append(self._outcome(run, now))
                del self._running[name]
            elif now >= run.task.hard_deadline:
                self._cancel(run)
                del self._running[name]
                results.append(TrialResult(
                    name, "Failed", fit_seconds=now - run.started,
                    failure_reason=f"timed out after {now - run.started:.0f}s and was stopped"))
        return results

    def _outcome(self, run: _Running, now: float) -> TrialResult:
        """The trial's result, or a Failed one saying what Ray reported."""
        try:
            result = self.ray.get(run.ref, timeout=60)
        except Exception as exc:
            return TrialResult(run.task.candidate, "Failed", fit_seconds=now - run.started,
                               failure_reason=failure_reason(exc))
        if result.artifact_dir == os.path.abspath(run.task.output_dir):
            result = replace(result, artifact_dir=run.task.output_dir)
        return receive(result, run.task, self._artifacts)

    def _cancel(self, run: _Running) -> None:
        try:
            self.ray.cancel(run.ref, force=True)
        except Exception:  # already ended, or its node is gone: nothing left to stop
            log.debug("cancelling %s failed", run.task.candidate, exc_info=True)

    def shutdown(self) -> list[str]:
        names = self.running()
        self._refused.clear()
        for run in self._running.values():
            self._cancel(run)
        self._running.clear()
        self._context = None  # the last reference: Ray frees the table
        return names


def failure_reason(exc: BaseException) -> str:
    """What a Ray error means for the trial, in one line with Ray's own first line."""
    from ray import exceptions as rex

    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")[:300]
    if isinstance(exc, rex.OutOfMemoryError):
        what = "Ray's memory monitor killed the trial's worker: its node ran out of memory"
    elif isinstance(exc, rex.NodeDiedError):
        what = "the Ray node running the trial died"
    elif isinstance(exc, rex.WorkerCrashedError):
        what = "the Ray worker running the trial died (crashed, killed, or its node was lost)"
    elif isinstance(exc, rex.TaskCancelledError):
        what = "the trial's Ray task was cancelled"
    elif isinstance(exc, (rex.ObjectLostError, rex.ObjectFetchTimedOutError)):
        what = "the job's data was lost from Ray's object store"
    elif isinstance(exc, rex.RayTaskError):
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        text = (str(cause).strip().splitlines() or [""])[0][:300]
        return f"{type(cause).__name__}: {text}"
    elif isinstance(exc, rex.GetTimeoutError):
        what = "the trial's result did not arrive from Ray"
    else:
        what = f"Ray error {type(exc).__name__}"
    return f"{what} ({first})" if first else what
