"""One-row latency of a job's saved models in process: a candidate and, for an ensemble or
a stack, each of its members.

    python -m bench.row_latency --job JOB [--candidates ensemble-009,lightgbm-007]
                                [--workspace DIR] [--datasets DIR] [--calls 500]

The job must be one of bench's own (its name starts with a bench prefix and the table's
name, as bench.common.job_name makes them, e.g. default-titanic-60s-0a2e), so that its
table's test rows (anchors.md's split) are the requests. Without --candidates: the job's
handed-out model and its members. Each timing is the median of `--calls` `predict_proba`
(regression: `predict`) calls on one-row DataFrames, test rows cycled, after warm-up; the
whole model is timed three times, since its first timing warms the members. To compare two
versions of tabpilot, run it at each commit on the same job: the models do not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    Table,
    base_parser,
    call_times_ms,
    datasets_dir,
    load_manifest,
    one_row_frames,
    prepared_split,
)


def table_of(job: str, tables: list[Table]) -> Table:
    """The bench table a bench job was run on, from its name (prefix-table-budget-tag)."""
    stem = job.split("-", 1)[1] if "-" in job else job
    found = [t for t in tables if stem.startswith(t.name.replace("_", "-")[:14])]
    if not found:
        raise SystemExit(f"error: job {job!r} is not one of bench's (no table name in it); "
                         "name a job that bench.automl or bench.default_model ran")
    return max(found, key=lambda t: len(t.name))


def p50_ms(model: Any, frames: list, task: str) -> float:
    call = model.predict if task == "regression" else model.predict_proba
    return float(np.median(call_times_ms(call, frames, warmup=20)))


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--job", required=True)
    parser.add_argument("--candidates", default=None)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args(argv)
    from tabpilot.artifacts import load

    folder = datasets_dir(args.datasets)
    table = table_of(args.job, load_manifest(folder))
    _, test = prepared_split(folder, table)
    frames = one_row_frames(test, table.target, args.calls)
    job_dir = Path(args.workspace) / "jobs" / args.job
    if not job_dir.is_dir():
        raise SystemExit(f"error: no job folder {job_dir}; pass --workspace")
    names = args.candidates.split(",") if args.candidates else \
        [_handed_out(args.workspace, args.job)]
    for name in names:
        model = load(job_dir / "candidates" / name / "model")
        whole = [p50_ms(model, frames, table.task) for _ in range(3)]
        print(f"{table.name} {name}: " + " / ".join(f"{v:.3f}" for v in whole) + " ms")
        for member in model.metadata.get("members") or {}:
            part = load(job_dir / "candidates" / member / "model")
            status = (part.metadata.get("compiled") or {}).get("status", "python")
            print(f"    {member} ({status}): {p50_ms(part, frames, table.task):.3f} ms")


def _handed_out(workspace: str, job: str) -> str:
    from tabpilot.store import Store

    best = Store.for_workspace(Path(workspace)).get_job(job).best_candidate
    if not best:
        raise SystemExit(f"error: job {job!r} hands out no model; pass --candidates")
    return best


if __name__ == "__main__":
    main()
