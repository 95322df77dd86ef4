"""Scale: a large table built from a real one finishes inside its limit, in bounded memory.

    python -m bench.scale [--rows 1000000] [--budget 120] [--datasets DIR]

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
    """Samples the memory of this process and all its descendants: RSS and PSS sums."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.peak, self.peak_pss = interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            rss = pss = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    full = p.memory_full_info()
                except psutil.Error:
                    continue
                rss, pss = rss + full.rss, pss + full.pss
            self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


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
    args = parser.parse_args(argv)
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
    with PeakMemory() as peak:
        job, wall = fit_tabpilot(train, table, args.budget, Path(args.workspace), "scale")
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
    log(f"wrote {md_path}")


if __name__ == "__main__":
    main()
