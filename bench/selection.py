"""How well a job's final choice holds on the test split, beside other ways to choose.

    python -m bench.selection --budget 60 [--only credit_g,ames_housing] [--folds 5]

Reads the tabpilot jobs that `bench.automl --budget B` ran (bench/results/automl-<B>s.json),
scores every completed candidate of each on the table's test split, and sets the job's
choice beside:
- the best single candidate by its (out-of-fold) validation score;
- the stack and the greedy ensemble, each by validation and on test;
- the greedy ensemble's *nested* validation score: weights chosen without the fold they
  are scored on, so it compares with the candidates' out-of-fold scores, as the stack's does;
- "honest": the candidate that is best when the ensemble is ranked by its nested score;
- the oracle: the best candidate on test (what no rule can beat).
Nothing is refitted: it reads the jobs' saved validation predictions and models.
Results go to bench/results/selection-<B>s.md (and .json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from bench.common import (
    DEFAULT_WORKSPACE,
    GREATER_IS_BETTER,
    Table,
    base_parser,
    datasets_dir,
    fmt,
    load_manifest,
    log,
    markdown_table,
    prepared_split,
    read_json,
    results_path,
    score,
    select,
    write_results,
)

ENSEMBLE_POOL = 20  # jobs/ensembling.MAX_MEMBERS: the candidates its greedy selection sees


def nested_objective(job_dir: Path, ranked: list[str], metric_name: str, folds: int,
                     seed: int = 0) -> float | None:
    """The greedy ensemble's validation score with each fold's weights chosen on the others."""
    from tabpilot.ensemble import greedy_weights
    from tabpilot.execution.trial import VALIDATION_PREDICTIONS
    from tabpilot.jobs.ensembling import _selection_metric
    from tabpilot.metrics import METRICS
    from tabpilot.metrics import score as metric_score
    from tabpilot.reports.candidate import VALIDATION_TARGET

    y = np.load(job_dir / VALIDATION_TARGET)
    pool = [n for n in ranked if not n.startswith("ensemble-")][:ENSEMBLE_POOL]
    paths = [job_dir / "candidates" / n / VALIDATION_PREDICTIONS for n in pool]
    preds = [np.load(p).astype(np.float64) for p in paths if p.is_file()]
    if len(preds) < 2:
        return None
    metric = METRICS[metric_name]
    classification = preds[0].ndim == 2
    chooser = _selection_metric(metric, classification)
    splitter = (StratifiedKFold if classification else KFold)(folds, shuffle=True,
                                                              random_state=seed)
    honest = np.zeros_like(preds[0])
    for fit, held in splitter.split(np.zeros(len(y)), y):
        weights = greedy_weights(
            [p[fit] for p in preds],
            lambda p, rows=fit: chooser.sign() * metric_score(chooser, y[rows], p))
        honest[held] = sum(w * p[held] for w, p in zip(weights, preds, strict=True))
    return metric_score(metric, y, honest)


def table_record(folder: Path, table: Table, job: str, workspace: Path, folds: int
                 ) -> dict[str, Any]:
    import tabpilot

    automl = tabpilot.AutoML.attach(job, workspace)
    board = automl.leaderboard()
    chosen = (automl.describe().get("BestCandidate") or {}).get("CandidateName")
    _, test = prepared_split(folder, table)
    job_dir = Path(workspace) / "jobs" / job
    rows = []
    for name, objective in zip(board["candidate"], board["objective"], strict=True):
        try:
            model = tabpilot.load_model(job, name, workspace=workspace)
            rows.append({"candidate": name, "validation": float(objective),
                         "test": score(model, test, table)})
        except Exception as exc:  # a candidate without a model (pruned): reported, skipped
            log(f"    {name}: {exc}")
    nested = nested_objective(job_dir, list(board["candidate"]), table.metric, folds)
    return {"job": job, "chosen": chosen, "nested_ensemble": nested, "candidates": rows}


def _pick(rows: list[dict[str, Any]], key: str, greater: bool) -> dict[str, Any] | None:
    rows = [r for r in rows if r.get(key) is not None and np.isfinite(r[key])]
    if not rows:
        return None
    return (max if greater else min)(rows, key=lambda r: r[key])


def summary_row(table: Table, rec: dict[str, Any]) -> list[Any]:
    greater = GREATER_IS_BETTER[table.metric]
    rows = rec["candidates"]
    by_name = {r["candidate"]: r for r in rows}
    singles = [r for r in rows if not r["candidate"].startswith(("ensemble-", "stack-"))]
    ensembles = [r for r in rows if r["candidate"].startswith("ensemble-")]
    stacks = [r for r in rows if r["candidate"].startswith("stack-")]
    best_single = _pick(singles, "validation", greater)
    ensemble = ensembles[0] if ensembles else None
    stack = stacks[0] if stacks else None
    honest_rows = [dict(r, validation=rec["nested_ensemble"]) if r is ensemble else r
                   for r in rows]
    honest = _pick(honest_rows, "validation", greater)
    oracle = _pick(rows, "test", greater)  # the best on test

    def cell(r: dict[str, Any] | None, key: str = "test") -> str:
        return "–" if r is None else fmt(r.get(key))

    chosen = by_name.get(rec["chosen"])
    return [table.name, table.metric, f"{rec['chosen']} {cell(chosen)}",
            f"{cell(best_single, 'validation')} / {cell(best_single)}",
            f"{cell(stack, 'validation')} / {cell(stack)}",
            f"{cell(ensemble, 'validation')} / {fmt(rec['nested_ensemble'])} / {cell(ensemble)}",
            f"{honest['candidate'] if honest else '–'} {cell(honest)}",
            f"{oracle['candidate'] if oracle else '–'} {cell(oracle)}"]


def main(argv: list[str] | None = None) -> None:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--only", help="comma-separated table names (default: all)")
    p.add_argument("--folds", type=int, default=5, help="folds of the nested ensemble score")
    args = p.parse_args(argv)
    folder = datasets_dir(args.datasets)
    runs = read_json(results_path(f"automl-{args.budget:g}s", ".json"))
    workspace = Path(args.workspace or DEFAULT_WORKSPACE)
    out: dict[str, Any] = {}
    lines = []
    for table in select(load_manifest(folder), args.only):
        job = (runs.get(table.name, {}).get("tabpilot") or {}).get("job")
        if not job:
            continue
        log(f"{table.name}: scoring the candidates of {job} on test ...")
        try:
            out[table.name] = rec = table_record(folder, table, job, workspace, args.folds)
        except Exception as exc:  # the job is gone (workspace cleaned): say so, go on
            log(f"    skipped: {exc}")
            continue
        lines.append(summary_row(table, rec))
    text = "\n".join([
        f"## Choosing the final model, budget {args.budget:g} s (test split scores)", "",
        markdown_table(["table", "metric", "chosen: test", "best single: val / test",
                        "stack: val / test", "ensemble: val / nested val / test",
                        "honest rule: test", "oracle: test"], lines)])
    md, _ = write_results(f"selection-{args.budget:g}s", text, out)
    log(f"wrote {md}")
    print(text)


if __name__ == "__main__":
    main()
