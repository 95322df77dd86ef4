"""Does tabpilot keep its time limit? Wall time of `fit` against `time_limit`.

    python -m bench.timelimit [--budget 60] [--tables adult,diamonds] [--datasets DIR]

Each table is prepared as anchors.md says and tabpilot is fitted on the 75 % train part with
the anchors' metric; the wall time runs from just before `fit` to just after it returns.
Target: wall / limit <= 1.10. Results go to bench/results/timelimit-<budget>s.md and .json.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

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

TARGET_RATIO = 1.10
DEFAULT_TABLES = "adult,diamonds"
HEADERS = ["table", "rows (train)", "limit s", "wall s", f"wall/limit (≤ {TARGET_RATIO:.2f})",
           "ok", "job ElapsedSeconds", "status", "secondary status", "completed", "failed",
           "stopped"]


def run_table(folder: Path, table: Table, budget: float, workspace: Path) -> dict[str, Any]:
    train, _ = prepared_split(folder, table)
    record: dict[str, Any] = {"table": table.name, "budget": budget, "train_rows": len(train)}
    try:
        automl, wall = fit_tabpilot(train, table, budget, workspace, "timelimit")
    except Exception as exc:
        traceback.print_exc()
        return record | {"error": error_line(exc)}
    desc = automl.describe()
    counts = desc["CandidateCounts"]
    return record | {
        "job": automl.name, "wall_seconds": wall, "ratio": wall / budget,
        "ok": wall / budget <= TARGET_RATIO, "elapsed_seconds": desc["ElapsedSeconds"],
        "status": desc["AutoMLJobStatus"], "secondary_status": desc["AutoMLJobSecondaryStatus"],
        "completed": counts.get("Completed", 0), "failed": counts.get("Failed", 0),
        "stopped": counts.get("Stopped", 0),
        "failure_reason": desc.get("FailureReason"),
    }


def table_row(rec: dict[str, Any]) -> list[Any]:
    if "error" in rec:
        return [rec["table"], rec["train_rows"], f"{rec['budget']:g}", "error", "–", "no",
                "–", rec["error"], "–", "–", "–", "–"]
    return [rec["table"], rec["train_rows"], f"{rec['budget']:g}", fmt(rec["wall_seconds"], 1),
            fmt(rec["ratio"], 3), "yes" if rec["ok"] else "NO",
            fmt(rec["elapsed_seconds"], 1), rec["status"], rec["secondary_status"],
            rec["completed"], rec["failed"], rec["stopped"]]


def report(records: list[dict[str, Any]], budget: float) -> str:
    ok = sum(1 for r in records if r.get("ok"))
    lines = [f"## tabpilot time limit, budget {budget:g} s", "",
             markdown_table(HEADERS, [table_row(r) for r in records]), "",
             f"{ok} of {len(records)} tables within {TARGET_RATIO:.2f} x the limit."]
    lines += [f"- {r['table']}: {r['failure_reason']}" for r in records
              if r.get("failure_reason")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--tables", default=DEFAULT_TABLES,
                        help=f"comma-separated table names (default {DEFAULT_TABLES})")
    args = parser.parse_args(argv)
    folder = datasets_dir(args.datasets)
    tables = select(load_manifest(folder), args.tables)
    records = []
    for i, table in enumerate(tables, 1):
        log(f"[{i}/{len(tables)}] {table.name}: fitting tabpilot for {args.budget:g} s ...")
        records.append(run_table(folder, table, args.budget, Path(args.workspace)))
    text = report(records, args.budget)
    print(text)
    md, js = write_results(f"timelimit-{args.budget:g}s", text, records)
    log(f"wrote {md} and {js}")


if __name__ == "__main__":
    main()
