"""Data larger than memory: a Parquet dataset whose frame would not fit this machine's RAM
is searched on a stratified sample and refit on the largest sample that fits.

    python -m bench.scale_parquet [--rows 40000000] [--chunk 4000000] [--budget 300]
                                  [--datasets DIR] [--folder DIR]

The dataset is bench/scale.py's widened diamonds as a CSV reader gives it (float64
numbers, text as strings: ~600 bytes a row in pandas), `--rows` rows written chunk by
chunk (each chunk its own seed, so no chunk repeats another) as Parquet files in
`--folder` (default: a temporary folder, removed after), and a held-out file of 200,000
rows (another seed) beside it. Its size in memory is estimated from the first chunk
(pandas' deep memory usage per row x rows) and reported beside the machine's RAM. One
job reads the folder (`AutoML.fit(folder)`); reported: the job's TrainingSample
(describe: rows searched, refit, of how many, the memory budget and why), its wall time
against the limit, the peak PSS of the whole process tree against RAM, and the test RMSE
on the held-out rows.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import (
    base_parser,
    datasets_dir,
    fmt,
    load_manifest,
    load_table,
    log,
    markdown_table,
    score,
    select,
    write_results,
)
from bench.scale import PeakMemory, release_garbage, widen

HELD_OUT = 200_000


def write_dataset(base, folder: Path, rows: int, chunk: int) -> float:
    """The dataset's files; returns its estimated in-memory bytes (as pandas holds it)."""
    folder.mkdir(parents=True, exist_ok=True)
    per_row = 0.0
    for i, start in enumerate(range(0, rows, chunk)):
        part = widen(base, min(chunk, rows - start), seed=100 + i)
        if i == 0:
            per_row = part.memory_usage(deep=True).sum() / len(part)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False),
                       folder / f"part-{i:04d}.parquet", row_group_size=500_000)
        log(f"  wrote part {i}: {start + len(part):,} of {rows:,} rows")
        del part
        release_garbage()
    return per_row * rows


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0], budget=300.0)
    parser.add_argument("--rows", type=int, default=40_000_000)
    parser.add_argument("--chunk", type=int, default=4_000_000)
    parser.add_argument("--folder", help="write the dataset here (kept) instead of a temp folder")
    args = parser.parse_args(argv)
    import tabpilot

    source = datasets_dir(args.datasets)
    table = select(load_manifest(source, ("regression",)), "diamonds")[0]
    base = load_table(source, table)
    root = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="tp-parquet-"))
    try:
        data = root / "dataset"
        if not any(data.glob("*.parquet")):
            memory = write_dataset(base, data, args.rows, args.chunk)
        else:  # a kept folder: the estimate from its first file
            first = pq.read_table(sorted(data.glob("*.parquet"))[0]).to_pandas()
            memory = first.memory_usage(deep=True).sum() / len(first) * args.rows
            del first
        test = widen(base, HELD_OUT, seed=7)
        ram = psutil.virtual_memory().total
        disk = sum(f.stat().st_size for f in data.glob("*.parquet"))
        log(f"dataset: {args.rows:,} rows, {disk / 2**30:.1f} GiB of Parquet, ~{memory / 2**30:.1f}"
            f" GiB in memory, RAM {ram / 2**30:.1f} GiB")
        release_garbage()
        with PeakMemory() as peak:
            automl = tabpilot.AutoML(target=table.target, time_limit=args.budget,
                                     metric=table.metric, problem_type=table.task,
                                     workspace=Path(args.workspace),
                                     name=f"scale-parquet-{int(time.time())}", verbosity=0)
            started = time.perf_counter()
            automl.fit(str(data))
            wall = time.perf_counter() - started
        desc = automl.describe()
        rmse = score(automl.best_model(), test, table)
    finally:
        if not args.folder:
            shutil.rmtree(root, ignore_errors=True)
    sample = desc.get("TrainingSample") or {}
    record = {"rows": args.rows, "parquet_gib": round(disk / 2**30, 2),
              "memory_gib": round(memory / 2**30, 1), "ram_gib": round(ram / 2**30, 1),
              "budget": args.budget, "wall_s": round(wall, 1),
              "wall_over_limit": round(wall / args.budget, 3),
              "peak_pss_gib": round(peak.peak_pss / 2**30, 2), "rmse": rmse,
              "status": desc["AutoMLJobStatus"], "secondary": desc["AutoMLJobSecondaryStatus"],
              "best": (desc.get("BestCandidate") or {}).get("CandidateName"),
              "sample": sample}
    md = markdown_table(
        ["rows", "Parquet GiB", "in memory GiB", "RAM GiB", "searched rows", "refit rows",
         "wall s", "wall/limit", "peak PSS GiB", "test RMSE", "best"],
        [[f"{args.rows:,}", fmt(record["parquet_gib"], 1), fmt(record["memory_gib"], 1),
          fmt(record["ram_gib"], 1), f"{sample.get('SearchRows') or 0:,}",
          f"{sample.get('RefitRows') or 0:,}", fmt(wall, 1), fmt(record["wall_over_limit"], 2),
          fmt(record["peak_pss_gib"], 2), fmt(rmse, 2), record["best"]]])
    md += f"\n\nTrainingSample.Reason: {sample.get('Reason')}\n"
    md_path, _ = write_results(f"scale-parquet-{args.rows}-{args.budget:g}s", md, record)
    print(md)
    log(f"wrote {md_path}")


if __name__ == "__main__":
    main()
