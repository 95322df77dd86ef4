"""What do the white-box reports cost? Seconds per candidate, in the job and on their own.

    python -m bench.reports [--budget 60] [--tables adult,womens_clothing_reviews]
                            [--candidates 5] [--datasets DIR]

Each table is prepared as anchors.md says and tabpilot is fitted on the 75 % train part.
The job writes its reports in its time share (10 % of the limit, at most 60 s): the
first table reports what it wrote and skipped there. Then, for the best `--candidates`
kept candidates, explanations (on the 1,000-row validation sample) and model insights
are rewritten and timed one by one, and so is the CandidateDefinitions notebook.
Results go to bench/results/reports-<budget>s.md and .json.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    Table,
    base_parser,
    datasets_dir,
    error_line,
    fit_tabpilot,
    fmt,
    load_manifest,
    log,
    markdown_table,
    prepared_split,
    select,
    write_results,
)

DEFAULT_TABLES = "adult,womens_clothing_reviews"
JOB_HEADERS = ["table", "rows (train)", "validation rows", "limit s", "wall s",
               "report share s", "report s", "explained (rows each)", "insights", "skipped",
               "failed", "CandidateDefinitions.ipynb s"]
CANDIDATE_HEADERS = ["table", "candidate", "algorithm", "explanation rows", "explanation s",
                     "insights s", "total s"]


def run_table(folder: Path, table: Table, budget: float, workspace: Path, n: int
              ) -> dict[str, Any]:
    from tabpilot.reports.candidate import write_explanations, write_insights
    from tabpilot.reports.definitions import write_notebook

    train, _ = prepared_split(folder, table)
    record: dict[str, Any] = {"table": table.name, "budget": budget, "train_rows": len(train)}
    try:
        automl, wall = fit_tabpilot(train, table, budget, workspace, "reports")
        desc = automl.describe()
        job_dir = Path(desc["JobDirectory"])
        reports = desc.get("Reports") or {}
        started = time.perf_counter()
        write_notebook(job_dir)
        record.update(
            wall_seconds=wall, status=desc["AutoMLJobStatus"],
            secondary_status=desc["AutoMLJobSecondaryStatus"],
            validation_rows=int(np.load(job_dir / "validation_target.npy").shape[0]),
            report_budget=reports.get("budget_seconds"), report_seconds=reports.get("seconds"),
            explained=len(reports.get("explained", [])),
            explained_rows=[e["rows"] for e in reports.get("explained", [])],
            insights=len(reports.get("insights", [])),
            skipped=len(reports.get("skipped", [])), failed=len(reports.get("failed", [])),
            notebook_seconds=time.perf_counter() - started, candidates=[])
        kept = [c for c in automl.candidates() if c["ModelLocation"]][:n]
        for c in kept:
            name = c["CandidateName"]
            t0 = time.perf_counter()
            path = write_explanations(job_dir, name, table.metric)
            t1 = time.perf_counter()
            write_insights(job_dir, name)
            t2 = time.perf_counter()
            rows = json.loads(path.read_text())["rows"]
            record["candidates"].append({"candidate": name, "algorithm": c["Algorithm"],
                                         "explanation_rows": rows,
                                         "explanation_seconds": t1 - t0,
                                         "insights_seconds": t2 - t1})
            log(f"  {name}: explanation {t1 - t0:.2f}s ({rows} rows), "
                f"insights {t2 - t1:.2f}s")
    except Exception as exc:
        log(traceback.format_exc())
        record["error"] = error_line(exc)
    return record


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--tables", default=DEFAULT_TABLES,
                        help=f"comma-separated table names (default {DEFAULT_TABLES})")
    parser.add_argument("--candidates", type=int, default=5,
                        help="kept candidates to time one by one, best first (default 5)")
    args = parser.parse_args()
    folder = datasets_dir(args.datasets)
    tables = select(load_manifest(folder), args.tables)
    records = []
    for table in tables:
        log(f"{table.name}: fitting with a {args.budget:g}s limit")
        records.append(run_table(folder, table, args.budget, Path(args.workspace),
                                 args.candidates))
    jobs, per_candidate = [], []
    for r in records:
        if "error" in r:
            jobs.append([r["table"], r["train_rows"], "–", f"{args.budget:g}", "–", "–", "–",
                         "–", "–", "–", r["error"], "–"])
            continue
        jobs.append([r["table"], r["train_rows"], r["validation_rows"], f"{args.budget:g}",
                     fmt(r["wall_seconds"], 1), fmt(r["report_budget"], 1),
                     fmt(r["report_seconds"], 2),
                     f"{r['explained']} ({', '.join(map(str, r['explained_rows'])) or '-'})",
                     r["insights"], r["skipped"],
                     r["failed"], fmt(r["notebook_seconds"], 3)])
        for c in r["candidates"]:
            per_candidate.append([r["table"], c["candidate"], c["algorithm"],
                                  c["explanation_rows"], fmt(c["explanation_seconds"], 2),
                                  fmt(c["insights_seconds"], 2),
                                  fmt(c["explanation_seconds"] + c["insights_seconds"], 2)])
    markdown = "\n\n".join([
        f"# Report generation, {args.budget:g} s jobs",
        "## In the job (its report share)", markdown_table(JOB_HEADERS, jobs),
        "## Per candidate, rewritten and timed one by one", markdown_table(CANDIDATE_HEADERS,
                                                                          per_candidate)])
    md, js = write_results(f"reports-{args.budget:g}s", markdown, records)
    print(markdown)
    log(f"wrote {md} and {js}")


if __name__ == "__main__":
    main()
