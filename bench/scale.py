"""Scale: a large table built from a real one finishes inside its limit, in bounded memory.

    python -m bench.scale [--rows 1000000] [--budget 120] [--datasets DIR]
    python -m bench.scale --trials-per-minute [--rows 100000] [--trials 12]

Diamonds (54k rows, 10 columns) is repeated to `--rows` rows and widened to 30 columns:
noisy copies of its numbers, combinations of its categoricals, and pure-noise columns, so
the table keeps diamonds' signal and gains realistic clutter. A quarter is held out (as in
anchors.md). Reported: wall seconds of `fit` against the limit, the peak memory of the
whole process tree (this process, the fork server and every trial process) against the
training DataFrame's in-memory size (target: under 4x), and the test RMSE.

Peak memory is sampled two ways. The RSS sum adds each process's resident memory, so the
pages a forked trial shares with the fork server (the preloaded libraries, ~200 MB) count
once per process. The PSS sum (proportional set size) counts each shared page once, split
among its sharers: the memory the tree really holds. Both are reported; the target is
judged on PSS. Before measuring, this process returns the garbage of building the table
to the OS (gc, malloc_trim), so the baseline is the frames, not their construction.

`--trials-per-minute` measures the executors instead: the same LightGBM trials on the
same table through the local executor, Ray on one node and Ray on two nodes sharing this
machine's cores: trials per minute of wall time (setup, i.e. storing or `ray.put` of the
table, included) and the peak PSS of everything this process started.
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from bench.common import (
    base_parser,
    datasets_dir,
    fit_tabpilot,
    fmt,
    load_manifest,
    load_table,
    log,
    markdown_table,
    score,
    select,
    split_table,
    write_results,
)

MEMORY_TARGET = 4.0


def widen(df: pd.DataFrame, rows: int, seed: int = 0, compact: bool = False) -> pd.DataFrame:
    """`df` repeated to `rows` rows, with noise on the repeats, and 20 more columns.

    As a CSV reader gives it (float64 numbers, text as strings), or with `compact`
    float32 numbers and categoricals."""
    rng = np.random.default_rng(seed)
    big = df.iloc[np.arange(rows) % len(df)].reset_index(drop=True)
    numbers = ["carat", "depth", "table", "x", "y", "z"]
    for c in numbers:  # the repeats are not exact copies
        big[c] = big[c] * (1 + rng.normal(0, 0.01, rows)).astype(np.float32)
    extra: dict[str, Any] = {}
    for i, c in enumerate(numbers * 2):  # 12 noisy derived numbers
        extra[f"{c}_noisy_{i}"] = (big[c] * rng.lognormal(0, 0.3, rows)).astype(np.float32)
    extra["cut_color"] = (big["cut"].astype(str) + "/" + big["color"].astype(str)).astype("category")
    extra["color_clarity"] = (big["color"].astype(str) + "/" + big["clarity"].astype(str)
                              ).astype("category")
    extra["shop"] = pd.Categorical(rng.choice([f"shop{i:02d}" for i in range(40)], rows))
    extra["region"] = pd.Categorical(rng.choice(["north", "south", "east", "west"], rows))
    for i in range(4):
        extra[f"noise_{i}"] = rng.normal(0, 1, rows).astype(np.float32)
    out = pd.concat([big, pd.DataFrame(extra)], axis=1)
    for c in out.columns:
        if c == "price":
            continue
        if compact:
            out[c] = out[c].astype("category" if out[c].dtype.kind in "OUc" or
                                   isinstance(out[c].dtype, pd.CategoricalDtype) else np.float32)
        else:
            out[c] = out[c].astype(object if isinstance(out[c].dtype, pd.CategoricalDtype)
                                   else out[c].dtype if out[c].dtype == object else np.float64)
    return out


class PeakMemory:
    """Samples the memory of this process and all its descendants: RSS and PSS sums.

    At the PSS peak it also keeps who held what (`at_peak`: PSS by role: this process,
    the fork server, trial processes, anything else) and when (`peak_at`, seconds after
    the start), so a peak can be traced to a phase and a process."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.peak, self.peak_pss = interval, 0, 0
        self.at_peak: dict[str, int] = {}
        self.peak_at = 0.0
        self.phase = self.peak_phase = ""  # the job's phase now (set by its progress) / at the peak
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        started = time.perf_counter()
        while not self._stop.is_set():
            rss = pss = 0
            roles: dict[str, int] = {}
            tree = [me, *me.children(recursive=True)]
            forked = {p.pid: p for p in tree if _is_fork_server(p)}  # the server and its
            # children, which keep its command line
            servers = {pid for pid, p in forked.items() if _ppid(p) not in forked}
            for p in tree:
                try:
                    full = p.memory_full_info()
                    role = _role(p, me.pid, servers)
                except psutil.Error:
                    continue
                rss, pss = rss + full.rss, pss + full.pss
                roles[role] = roles.get(role, 0) + full.pss
            self.peak = max(self.peak, rss)
            if pss > self.peak_pss:
                self.peak_pss, self.at_peak = pss, roles
                self.peak_at, self.peak_phase = time.perf_counter() - started, self.phase
            time.sleep(self.interval)

    def breakdown(self) -> str:
        """PSS by role at the peak, in MB: 'job 900, trials 700 (2), ...'."""
        return ", ".join(f"{role} {mb / 2**20:.0f}" for role, mb in
                         sorted(self.at_peak.items(), key=lambda kv: -kv[1]))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _is_fork_server(p: psutil.Process) -> bool:
    try:
        return "forkserver" in " ".join(p.cmdline())
    except psutil.Error:
        return False


def _ppid(p: psutil.Process) -> int | None:
    try:
        return p.ppid()
    except psutil.Error:
        return None


def _role(p: psutil.Process, me: int, servers: set[int]) -> str:
    """What a process of the tree is: the job (this process), the fork server, a trial
    (the fork server's children), or other (Ray's processes, a reaper)."""
    if p.pid == me:
        return "job"
    if p.pid in servers:
        return "fork server"
    return "trials" if p.ppid() in servers else "other"


def release_garbage() -> None:
    """Free what building the table left behind (Python's and glibc's free lists)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the baseline keeps that garbage
        pass


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0], budget=120.0)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--compact", action="store_true",
                        help="float32 numbers and categoricals instead of float64 and strings")
    parser.add_argument("--trials-per-minute", action="store_true",
                        help="executor throughput instead: the same trials on the local "
                             "executor, Ray on one node and Ray on two nodes (same cores)")
    parser.add_argument("--trials", type=int, default=12,
                        help="with --trials-per-minute: trials per executor")
    args = parser.parse_args(argv)
    if args.trials_per_minute:
        return trials_per_minute(args)
    folder = datasets_dir(args.datasets)
    table = select(load_manifest(folder, ("regression",)), "diamonds")[0]
    wide = widen(load_table(folder, table), args.rows, compact=args.compact)
    train, test = split_table(wide, table)
    del wide
    release_garbage()
    frame_mb = train.memory_usage(deep=True).sum() / 2**20
    base_mb = psutil.Process().memory_full_info().pss / 2**20
    log(f"scale: {len(train)} training rows x {train.shape[1]} columns, {frame_mb:.0f} MB "
        f"in memory; this process holds {base_mb:.0f} MB before fit")
    phases: list[tuple[str, float]] = []  # (phase, seconds into the job when it began)
    with PeakMemory() as peak:
        def seen(progress: Any) -> None:
            if progress.phase and (not phases or phases[-1][0] != progress.phase):
                phases.append((progress.phase, round(progress.elapsed, 1)))
                peak.phase = progress.phase

        job, wall = fit_tabpilot(train, table, args.budget, Path(args.workspace), "scale",
                                 on_progress=seen)
    desc = job.describe()
    rmse = score(job.best_model(), test, table)
    peak_mb, pss_mb = peak.peak / 2**20, peak.peak_pss / 2**20
    record = {
        "rows": args.rows, "frame": "compact" if args.compact else "as read from CSV",
        "train_rows": len(train), "columns": train.shape[1] - 1,
        "frame_mb": round(frame_mb, 1), "budget": args.budget, "wall_s": round(wall, 1),
        "wall_over_limit": round(wall / args.budget, 3), "peak_mb": round(peak_mb, 1),
        "peak_over_frame": round(peak_mb / frame_mb, 2), "peak_pss_mb": round(pss_mb, 1),
        "peak_pss_over_frame": round(pss_mb / frame_mb, 2), "start_pss_mb": round(base_mb, 1),
        "peak_pss_above_start_over_frame": round((pss_mb - base_mb) / frame_mb, 2),
        "rmse": rmse, "best": desc["BestCandidate"]["CandidateName"] if desc["BestCandidate"]
        else None, "status": desc["AutoMLJobStatus"],
        "secondary": desc["AutoMLJobSecondaryStatus"],
        "candidates": desc["CandidateCounts"],
        "phases": phases, "peak_at_s": round(peak.peak_at, 1), "peak_phase": peak.peak_phase,
        "peak_pss_by_role_mb": {k: round(v / 2**20) for k, v in peak.at_peak.items()},
    }
    rows = [[f"{record['train_rows']:,} x {record['columns']}", f"{frame_mb:.0f}",
             fmt(wall, 1), fmt(record["wall_over_limit"], 2), fmt(base_mb, 0), fmt(pss_mb, 0),
             fmt(record["peak_pss_over_frame"], 2), f"≤ {MEMORY_TARGET:g}", fmt(peak_mb, 0),
             fmt(record["peak_over_frame"], 2), fmt(rmse, 2), record["best"],
             record["secondary"]]]
    md = markdown_table(["train rows x cols", "frame MB", "wall s", "wall/limit",
                         "start PSS MB", "peak PSS MB", "PSS/frame", "target", "peak RSS sum MB",
                         "RSS/frame", "test RMSE", "best", "secondary status"], rows)
    kind = "compact" if args.compact else "csv"
    md_path, _ = write_results(f"scale-{args.rows}-{kind}-{args.budget:g}s", md, record)
    print(md)
    log(f"peak PSS at {peak.peak_at:.0f}s ({peak.peak_phase}): {peak.breakdown()} MB; "
        "phases began at " + ", ".join(f"{name} {at:g}s" for name, at in phases))
    log(f"wrote {md_path}")


def _trial_context(train: pd.DataFrame, target: str) -> Any:
    """The job's shared context for `train`: prepared, holdout split, 1 thread a trial."""
    from tabpilot.data.prepare import prepare
    from tabpilot.data.split import make_split
    from tabpilot.execution import TrialContext

    prepared = prepare(train, target)
    split = make_split(prepared.y, False, 0.2, 1, 0)
    return TrialContext(X=prepared.X, y=prepared.y, split=split, schema=prepared.schema,
                        problem_type=prepared.problem_type, metric=prepared.metric,
                        classes=prepared.classes, job_name="bench-scale", target=target,
                        n_threads=1, seed=0)


def _run_trials(executor: Any, context: Any, n: int, folder: Path) -> dict[str, Any]:
    """`n` identical LightGBM trials (its first portfolio configuration) through
    `executor`, as many at once as it has slots: wall seconds and how they ended."""
    from tabpilot.execution import TrialTask
    from tabpilot.models import FAMILIES

    params = FAMILIES["lightgbm"].portfolio(context.problem_type)[0]
    started = time.perf_counter()
    executor.start(context)
    setup = time.perf_counter() - started
    submitted, results = 0, []
    while len(results) < n:
        while submitted < n and executor.free_slots() > 0:
            now = time.time()
            executor.submit(TrialTask(f"lightgbm-{submitted:03d}", "lightgbm", params,
                                      str(folder / f"lightgbm-{submitted:03d}" / "model"),
                                      soft_deadline=now + 240, hard_deadline=now + 300))
            submitted += 1
        results += executor.poll(timeout=0.2)
    wall = time.perf_counter() - started
    executor.shutdown()
    failed = [r.failure_reason for r in results if r.status != "Completed"]
    return {"setup_s": round(setup, 2), "wall_s": round(wall, 2),
            "trials_per_minute": round(60 * (n - len(failed)) / wall, 2),
            "failed": len(failed), "first_failure": failed[0] if failed else None}


def trials_per_minute(args: Any) -> None:
    """Local vs Ray (one node) vs Ray (two nodes) on the same cores and the same trials.

    The Ray clusters are the tests' loopback clusters (tests/execution/raycluster.py),
    started by this process, so the peak memory (PSS, this process tree: trial processes,
    raylets, workers and the object store's shared pages) covers each executor whole."""
    import os
    import sys
    import tempfile

    from tabpilot.execution import LocalProcessExecutor
    from tabpilot.execution.onray import RayExecutor

    sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "execution"))
    from raycluster import RayCluster

    folder = datasets_dir(args.datasets)
    table = select(load_manifest(folder, ("regression",)), "diamonds")[0]
    train, _ = split_table(widen(load_table(folder, table), args.rows, compact=args.compact),
                           table)
    context = _trial_context(train, table.target)
    frame_mb = train.memory_usage(deep=True).sum() / 2**20
    del train
    release_garbage()
    cores = os.cpu_count() or 1
    records = []
    for name, nodes in [("local", 0), ("ray, 1 node", 1), ("ray, 2 nodes", 2)]:
        log(f"trials per minute: {name}, {args.trials} trials on {cores} cores")
        with tempfile.TemporaryDirectory(prefix="bench-tpm-") as out, PeakMemory() as peak:
            if nodes == 0:
                record = _run_trials(LocalProcessExecutor(cores), context, args.trials,
                                     Path(out))
            else:
                with RayCluster(nodes=nodes, cpus_per_node=max(1, cores // nodes)) as cluster:
                    # as `--executor ray://HOST:PORT` reaches it (Ray Client)
                    executor = RayExecutor(None, address=cluster.address)
                    record = _run_trials(executor, context, args.trials, Path(out))
        records.append({"executor": name, **record, "peak_pss_mb": round(peak.peak_pss / 2**20),
                        "peak_pss_over_frame": round(peak.peak_pss / 2**20 / frame_mb, 2)})
    rows = [[r["executor"], r["setup_s"], r["wall_s"], fmt(r["trials_per_minute"], 1),
             r["failed"], r["peak_pss_mb"], r["peak_pss_over_frame"]] for r in records]
    md = markdown_table(["executor", "setup s", "wall s", "trials/min", "failed",
                         "peak PSS MB", "PSS/frame"], rows)
    md = (f"{len(context.y):,} rows x {len(context.schema.features)} features "
          f"({frame_mb:.0f} MB frame), {args.trials} LightGBM trials, {cores} cores\n\n{md}")
    md_path, _ = write_results(f"scale-trials-per-minute-{args.rows}", md,
                               {"rows": args.rows, "cores": cores, "frame_mb": frame_mb,
                                "trials": args.trials, "executors": records})
    print(md)
    log(f"wrote {md_path}")


if __name__ == "__main__":
    main()
