"""Single-row and batch prediction speed of tabpilot's gradient-boosting models, in process.

    python -m bench.latency [--table churn_sagemaker] [--budget 60] [--datasets DIR]

Trains tabpilot with algorithms lightgbm, xgboost and catboost on the table's 75 % train part,
then times `model.predict` on one-row DataFrames (1000 calls, test rows cycled) and on the
whole 25 % test part, for the best model and for each family's best candidate.
Target: p50 <= 1 ms. Results go to bench/results/latency-<table>-<budget>s.md and .json.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import (
    Table,
    base_parser,
    call_times_ms,
    datasets_dir,
    error_line,
    fit_tabpilot,
    fmt,
    load_manifest,
    log,
    markdown_table,
    one_row_frames,
    prepared_split,
    select,
    write_results,
)

FAMILIES = ["lightgbm", "xgboost", "catboost"]
CALLS = 1000
WARMUP = 20
BATCH_REPEATS = 3
TARGET_P50_MS = 1.0
HEADERS = ["model", "candidate", "algorithm", "validation objective", "p50 ms", "p90 ms",
           "p99 ms", "batch rows/s", "leaderboard p50 ms", f"p50 ≤ {TARGET_P50_MS:g} ms"]


def measure(model: Any, test: pd.DataFrame, target: str) -> dict[str, float]:
    """Percentiles of single-row predict (ms) and the batch throughput on the test part."""
    times = call_times_ms(model.predict, one_row_frames(test, target, CALLS), warmup=WARMUP)
    X = test.drop(columns=[target])
    seconds = []
    for _ in range(BATCH_REPEATS):
        start = time.perf_counter()
        model.predict(X)
        seconds.append(time.perf_counter() - start)
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99),
            "mean_ms": float(times.mean()), "batch_rows": len(X),
            "batch_rows_s": len(X) / float(np.median(seconds))}


def models_to_time(automl: Any, board: pd.DataFrame) -> list[tuple[str, pd.Series | None]]:
    """('best', its row) then (family, that family's best row or None)."""
    rows: list[tuple[str, pd.Series | None]] = [("best", board.iloc[0])]
    for family in FAMILIES:
        mine = board[board["candidate"].str.startswith(f"{family}-")]
        rows.append((family, mine.iloc[0] if len(mine) else None))
    return rows


def time_model(label: str, row: pd.Series | None, automl: Any, test: pd.DataFrame,
               table: Table) -> dict[str, Any]:
    import tabpilot

    if row is None:
        return {"model": label, "error": "no completed candidate of this family"}
    record = {"model": label, "candidate": row["candidate"], "algorithm": row["algorithm"],
              "objective": row["objective"], "leaderboard_p50_ms": row["latency_ms_p50"]}
    try:
        model = automl.best_model() if label == "best" else tabpilot.load_model(
            automl.name, candidate=row["candidate"], workspace=automl.workspace)
        return record | measure(model, test, table.target)
    except Exception as exc:  # e.g. a pruned candidate: report, keep going
        return record | {"error": error_line(exc)}


def table_row(rec: dict[str, Any]) -> list[Any]:
    ok = "–" if "p50_ms" not in rec else ("yes" if rec["p50_ms"] <= TARGET_P50_MS else "NO")
    throughput = rec.get("batch_rows_s")
    return [rec["model"], rec.get("candidate", "–"), rec.get("algorithm", "–"),
            fmt(rec.get("objective")), fmt(rec.get("p50_ms"), 3), fmt(rec.get("p90_ms"), 3),
            fmt(rec.get("p99_ms"), 3), "–" if throughput is None else f"{throughput:,.0f}",
            fmt(rec.get("leaderboard_p50_ms"), 3), ok]


def report(records: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = [f"## tabpilot predict latency, {info['table']}, budget {info['budget']:g} s "
             f"(algorithms {', '.join(FAMILIES)})", "",
             f"job {info['job']}: fit {info['fit_seconds']:.1f} s, {info['completed']} "
             f"candidates completed; {CALLS} single-row calls (test rows cycled), batch = "
             f"{info['test_rows']} test rows; objective {info['metric']} on validation.", "",
             markdown_table(HEADERS, [table_row(r) for r in records])]
    lines += [f"- {r['model']}: {r['error']}" for r in records if "error" in r]
    return "\n".join(lines)


def run(folder: Path, table: Table, budget: float, workspace: Path
        ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    train, test = prepared_split(folder, table)
    automl, wall = fit_tabpilot(train, table, budget, workspace, "latency", algorithms=FAMILIES)
    board = automl.leaderboard()
    if board.empty:
        raise SystemExit(f"error: job {automl.name} has no completed candidate: "
                         f"{automl.describe().get('FailureReason')}")
    info = {"table": table.name, "budget": budget, "job": automl.name, "fit_seconds": wall,
            "completed": len(board), "test_rows": len(test), "metric": table.metric}
    records = []
    for label, row in models_to_time(automl, board):
        log(f"timing {label} ...")
        records.append(time_model(label, row, automl, test, table))
    return records, info


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--table", default="churn_sagemaker",
                        help="the table to train on (default churn_sagemaker)")
    args = parser.parse_args(argv)
    if "," in args.table:
        parser.error("--table takes one table name")
    folder = datasets_dir(args.datasets)
    [table] = select(load_manifest(folder), args.table)
    log(f"{table.name}: fitting tabpilot ({', '.join(FAMILIES)}) for {args.budget:g} s ...")
    records, info = run(folder, table, args.budget, Path(args.workspace))
    text = report(records, info)
    print(text)
    md, js = write_results(f"latency-{table.name}-{args.budget:g}s", text,
                           {"info": info, "models": records})
    log(f"wrote {md} and {js}")


if __name__ == "__main__":
    main()
