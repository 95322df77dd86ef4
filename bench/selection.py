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
- the oracle: the best candidate on test (what no rule can beat);
- greedy ensembles over other pools, weights chosen on validation as the job does, scored on
  test: POLICIES (the job's pool: the best 20 by validation; the best of each family first,
  then the best; the best 40 with twice the greedy steps).
Nothing is refitted: it reads the jobs' saved validation predictions and models.
Results go to bench/results/selection-<B>s.md (and .json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score
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
    select,
    write_results,
)

ENSEMBLE_POOL = 20  # jobs/ensembling.MAX_MEMBERS: the candidates its greedy selection sees
GREEDY_STEPS = 25  # ensemble/caruana.greedy_weights' default
# name: (how the pool is drawn from the ranked single candidates and stacks, its size, steps)
POLICIES = {"job": ("ranked", ENSEMBLE_POOL, GREEDY_STEPS),
            "families": ("families", ENSEMBLE_POOL, GREEDY_STEPS),
            "top40x50": ("ranked", 40, 2 * GREEDY_STEPS)}


def draw_pool(ranked: list[tuple[str, str]], how: str, size: int) -> list[str]:
    """Candidate names from (name, algorithm) pairs, best first: the first `size`, or
    ("families") the best of each algorithm first and then the rest in rank order."""
    names = [n for n, _ in ranked if not n.startswith("ensemble-")]
    if how == "families":
        seen: dict[str, str] = {}
        for n, algorithm in ranked:
            if not n.startswith("ensemble-"):
                seen.setdefault(algorithm, n)
        firsts = list(seen.values())
        names = firsts + [n for n in names if n not in firsts]
    return names[:size]


def greedy(preds: list[np.ndarray], y: np.ndarray, metric_name: str, steps: int,
           rows: np.ndarray | None = None) -> np.ndarray:
    """The job's greedy weights over `preds` (on `rows` of them, default all)."""
    from tabpilot.ensemble import greedy_weights
    from tabpilot.jobs.ensembling import selection_metric
    from tabpilot.metrics import METRICS
    from tabpilot.metrics import score as metric_score

    rows = np.arange(len(y)) if rows is None else rows
    chooser = selection_metric(METRICS[metric_name], preds[0].ndim == 2)
    return greedy_weights([p[rows] for p in preds],
                          lambda p: chooser.sign() * metric_score(chooser, y[rows], p), steps)


def nested_objective(preds: list[np.ndarray], y: np.ndarray, metric_name: str, folds: int,
                     steps: int = GREEDY_STEPS, seed: int = 0) -> float | None:
    """The greedy ensemble's validation score with each fold's weights chosen on the others."""
    from tabpilot.metrics import METRICS
    from tabpilot.metrics import score as metric_score

    if len(preds) < 2:
        return None
    classification = preds[0].ndim == 2
    splitter = (StratifiedKFold if classification else KFold)(folds, shuffle=True,
                                                              random_state=seed)
    honest = np.zeros_like(preds[0])
    for fit, held in splitter.split(np.zeros(len(y)), y):
        weights = greedy(preds, y, metric_name, steps, fit)
        honest[held] = sum(w * p[held] for w, p in zip(weights, preds, strict=True))
    return metric_score(METRICS[metric_name], y, honest)


def raw_score(table: Table, classes: list | None, y: pd.Series, raw: np.ndarray) -> float:
    """bench.common.score's figure from a predictor's raw predictions."""
    if table.task == "regression":
        return float(np.sqrt(np.mean((y.to_numpy(dtype=float) - raw) ** 2)))
    labels = list(classes or [])
    if table.task == "binary":
        return float(roc_auc_score(y == sorted(labels)[-1], raw[:, labels.index(sorted(labels)[-1])]))
    return float(log_loss(y, np.clip(raw, 1e-15, 1.0), labels=labels))


def policy_scores(table: Table, job_dir: Path, ranked: list[tuple[str, str]],
                  test_raw: dict[str, np.ndarray], classes: list | None, y_test: pd.Series,
                  folds: int) -> dict[str, dict[str, float | None]]:
    """Each POLICIES pool's greedy ensemble: nested validation score and test score."""
    from tabpilot.execution.trial import VALIDATION_PREDICTIONS
    from tabpilot.reports.candidate import VALIDATION_TARGET

    y = np.load(job_dir / VALIDATION_TARGET)
    out: dict[str, dict[str, float | None]] = {}
    for policy, (how, size, steps) in POLICIES.items():
        names = [n for n in draw_pool(ranked, how, size) if n in test_raw and
                 (job_dir / "candidates" / n / VALIDATION_PREDICTIONS).is_file()]
        preds = [np.load(job_dir / "candidates" / n / VALIDATION_PREDICTIONS).astype(np.float64)
                 for n in names]
        if len(preds) < 2:
            continue
        weights = greedy(preds, y, table.metric, steps)
        test = sum(w * test_raw[n] for w, n in zip(weights, names, strict=True))
        out[policy] = {"nested": nested_objective(preds, y, table.metric, folds, steps),
                       "test": raw_score(table, classes, y_test, test),
                       "members": int((weights > 0).sum())}
    return out


def table_record(folder: Path, table: Table, job: str, workspace: Path, folds: int
                 ) -> dict[str, Any]:
    import tabpilot

    automl = tabpilot.AutoML.attach(job, workspace)
    board = automl.leaderboard()
    chosen = (automl.describe().get("BestCandidate") or {}).get("CandidateName")
    _, test = prepared_split(folder, table)
    X_test, y_test = test.drop(columns=[table.target]), test[table.target]
    job_dir = Path(workspace) / "jobs" / job
    rows, test_raw, classes = [], {}, None
    for name, objective in zip(board["candidate"], board["objective"], strict=True):
        try:
            model = tabpilot.load_model(job, name, workspace=workspace)
            raw = model.predictor.raw_predict(X_test)
        except Exception as exc:  # a candidate without a model (pruned): reported, skipped
            log(f"    {name}: {exc}")
            continue
        classes = model.classes
        test_raw[name] = raw
        rows.append({"candidate": name, "validation": float(objective),
                     "test": raw_score(table, classes, y_test, raw)})
    ranked = list(zip(board["candidate"], board["algorithm"], strict=True))
    policies = policy_scores(table, job_dir, ranked, test_raw, classes, y_test, folds)
    return {"job": job, "chosen": chosen, "candidates": rows, "policies": policies,
            "nested_ensemble": (policies.get("job") or {}).get("nested")}


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
            f"{oracle['candidate'] if oracle else '–'} {cell(oracle)}",
            *[_policy_cell(rec["policies"].get(p)) for p in POLICIES]]


def _policy_cell(found: dict[str, Any] | None) -> str:
    if not found:
        return "–"
    return f"{fmt(found['nested'])} / {fmt(found['test'])} ({found['members']})"


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
                        "honest rule: test", "oracle: test",
                        *[f"pool {p}: nested val / test (members)" for p in POLICIES]],
                       lines)])
    md, _ = write_results(f"selection-{args.budget:g}s", text, out)
    log(f"wrote {md}")
    print(text)


if __name__ == "__main__":
    main()
