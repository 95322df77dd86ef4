"""tabpilot against the anchors of ../shared/datasets/anchors.md (LightGBM, FLAML, AutoGluon).

    python -m bench.anchors --budget 60 [--datasets DIR] [--only adult,titanic] [--force]

Runs the binary, multiclass and regression tables one after another, fits tabpilot on the
75 % train part, scores the best model on the 25 % with the anchors' metric, and prints one
markdown table plus win/tie/loss counts. Results go to bench/results/anchors-<budget>s.md and
.json; tables already in the JSON are skipped (resume) unless --force.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    GREATER_IS_BETTER,
    Table,
    base_parser,
    call_times_ms,
    compare,
    datasets_dir,
    error_line,
    fit_tabpilot,
    fmt,
    load_manifest,
    log,
    markdown_table,
    one_row_frames,
    parse_anchors,
    prepared_split,
    read_json,
    results_path,
    score,
    select,
    write_json,
    write_results,
)

ANCHORS = ("lightgbm", "flaml", "autogluon", "autogluon:best_quality")
LATENCY_CALLS = 200
HEADERS = ["table", "task", "metric", "tabpilot", "lightgbm", "flaml", "autogluon",
           "tabpilot vs lightgbm", "fit s", "wall/budget", "row ms (tabpilot / flaml / autogluon)",
           "best algorithm"]


def evaluate(automl: Any, test: Any, table: Table) -> dict[str, Any]:
    """Score the best model on the test part and time it on single rows."""
    desc = automl.describe()
    model = automl.best_model()
    value = score(model, test, table)
    predict = model.predict if table.task == "regression" else model.predict_proba
    times = call_times_ms(predict, one_row_frames(test, table.target, LATENCY_CALLS))
    best = desc.get("BestCandidate") or {}
    return {
        "score": value,
        "row_ms_p50": float(np.median(times)),
        "best_candidate": best.get("CandidateName"),
        "best_algorithm": best.get("Algorithm"),
        "best_trained_on": best.get("TrainedOn"),
        "validation_objective": (best.get("FinalAutoMLJobObjectiveMetric") or {}).get("Value"),
        "status": desc["AutoMLJobStatus"],
        "secondary_status": desc["AutoMLJobSecondaryStatus"],
        "elapsed_seconds": desc["ElapsedSeconds"],
        "candidates": desc["CandidateCounts"],
    }


def run_table(folder: Path, table: Table, budget: float, workspace: Path) -> dict[str, Any]:
    """One table end to end; a failure is recorded (with its first line), not raised."""
    train, test = prepared_split(folder, table)
    record: dict[str, Any] = {"table": table.name, "task": table.task, "metric": table.metric,
                              "budget": budget, "train_rows": len(train), "test_rows": len(test)}
    stage = "fit"
    try:
        automl, wall = fit_tabpilot(train, table, budget, workspace, "anchors")
        record.update(job=automl.name, fit_seconds=wall, wall_budget=wall / budget)
        stage = "evaluate"
        record.update(evaluate(automl, test, table))
    except Exception as exc:  # keep the sweep going; the failure is reported
        traceback.print_exc()
        record["error"] = f"{stage}: {error_line(exc)}"
    return record


def _anchor_ms(anchor: dict[str, Any]) -> tuple[str, str]:
    cell = anchor.get("row ms (flaml / autogluon)")
    parts = [p.strip() for p in str(cell).split("/")] if isinstance(cell, str) else []
    return (parts[0], parts[1]) if len(parts) == 2 else ("–", "–")


def table_row(rec: dict[str, Any], anchor: dict[str, Any]) -> list[str]:
    metric = rec["metric"]
    arrow = "↑" if GREATER_IS_BETTER[metric] else "↓"
    value = rec.get("score")
    flaml_ms, ag_ms = _anchor_ms(anchor)
    row_ms = fmt(rec.get("row_ms_p50"), 2)
    return [
        rec["table"], rec["task"], f"{metric} {arrow}",
        "error" if "error" in rec else fmt(value),
        fmt(anchor.get("lightgbm")), fmt(anchor.get("flaml")), fmt(anchor.get("autogluon")),
        compare(value, anchor.get("lightgbm"), metric) or "–",
        fmt(rec.get("fit_seconds"), 1), fmt(rec.get("wall_budget"), 2),
        f"{row_ms} / {flaml_ms} / {ag_ms}", rec.get("best_algorithm") or "–",
    ]


def counts(records: list[dict[str, Any]], anchors: dict[str, dict[str, Any]]) -> list[str]:
    """One line per anchor: win / tie / loss of tabpilot against it."""
    lines = []
    for name in ANCHORS:
        tally = {"win": 0, "tie": 0, "loss": 0}
        for rec in records:
            outcome = compare(rec.get("score"), anchors.get(rec["table"], {}).get(name),
                              rec["metric"])
            if outcome:
                tally[outcome] += 1
        if sum(tally.values()):
            lines.append(f"- vs {name}: {tally['win']} win / {tally['tie']} tie / "
                         f"{tally['loss']} loss")
    return lines


def report(records: list[dict[str, Any]], anchors: dict[str, dict[str, Any]] | None,
           budget: float) -> str:
    anchors = anchors or {}
    parts = [f"## tabpilot vs anchors, budget {budget:g} s ({len(records)} tables)", "",
             markdown_table(HEADERS, [table_row(r, anchors.get(r["table"], {}))
                                      for r in records]), ""]
    if not anchors:
        parts.append(f"anchors.md has no '## Budget {budget:g} s' section: no anchor values.")
    parts += counts(records, anchors)
    parts += [f"- {r['table']} failed: {r['error']}" for r in records if "error" in r]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated table names (default: all)")
    parser.add_argument("--force", action="store_true",
                        help="rerun tables already in the results JSON")
    args = parser.parse_args(argv)
    folder = datasets_dir(args.datasets)
    manifest = load_manifest(folder)
    tables = select(manifest, args.only)
    stem = f"anchors-{args.budget:g}s"
    done = read_json(results_path(stem, ".json"))
    for i, table in enumerate(tables, 1):
        if table.name in done and "error" not in done[table.name] and not args.force:
            log(f"[{i}/{len(tables)}] {table.name}: already in {stem}.json, skipped")
            continue
        log(f"[{i}/{len(tables)}] {table.name}: fitting tabpilot for {args.budget:g} s ...")
        done[table.name] = run_table(folder, table, args.budget, Path(args.workspace))
        write_json(stem, done)  # save after every table, so a stopped run resumes
        rec = done[table.name]
        log(f"    {rec.get('error') or fmt(rec.get('score'))}")
    records = [done[t.name] for t in manifest if t.name in done]
    text = report(records, parse_anchors(folder / "anchors.md", args.budget), args.budget)
    print(text)
    md, js = write_results(stem, text, done)
    log(f"wrote {md} and {js}")


if __name__ == "__main__":
    main()
