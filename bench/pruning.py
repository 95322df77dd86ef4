"""What pruning a greedy ensemble (tabpilot.ensemble.caruana) does to the ensembles that
bench jobs recorded before it existed: the members it drops, their one-row latencies as
the jobs timed them, and the ensemble's validation and test scores with and without them.

    python -m bench.pruning --workspace DIR [--datasets DIR]

The workspace is one of bench.default_model's or bench.automl's (its jobs are named after
their tables). Each ensemble's recorded weights are turned back into inclusion counts and
pruned on the job's saved validation predictions, with the metric the selection used; the
test score is the anchors' (anchors.md's split), from the members' own predictions. An
ensemble one of whose members was deleted from the job's folder is listed as skipped.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import Table, base_parser, datasets_dir, load_manifest, prepared_split
from bench.common import score as test_score
from bench.row_latency import table_of
from tabpilot.artifacts import load
from tabpilot.ensemble.caruana import prune
from tabpilot.execution.trial import VALIDATION_PREDICTIONS
from tabpilot.jobs.ensembling import selection_metric
from tabpilot.metrics import METRICS, score


class _Blend:
    """The weighted average of members' test predictions, as bench.common.score reads a model."""

    def __init__(self, predictions: dict[str, np.ndarray], weights: dict[str, float],
                 classes: list | None) -> None:
        total = sum(weights.values())
        self.values = sum(predictions[n] * w / total for n, w in weights.items())
        self.classes = classes

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.values

    def predict_proba(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self.values, columns=self.classes)


def pruned_ensemble(job_dir: Path, weights: dict[str, float], table: Table, folder: Path
                    ) -> dict[str, Any]:
    """One recorded ensemble, pruned: what was dropped, and the scores before and after."""
    names = list(weights)
    missing = [n for n in names if not (job_dir / "candidates" / n / VALIDATION_PREDICTIONS)
               .is_file()]
    if missing:
        return {"skipped": f"{', '.join(missing)} deleted from the job's folder"}
    y = np.load(job_dir / "validation_target.npy", allow_pickle=True)
    first = load(job_dir / "candidates" / names[0] / "model")
    metric = METRICS[first.metadata["objective_metric"]]
    chooser = selection_metric(metric, table.task != "regression")
    preds = [np.load(job_dir / "candidates" / n / VALIDATION_PREDICTIONS).astype(np.float64)
             for n in names]

    def value(p: np.ndarray) -> float:
        return chooser.sign() * score(chooser, y, p)

    counts = np.array([weights[n] for n in names])
    counts = counts / counts.min()
    before = value(sum(c * p for c, p in zip(counts, preds, strict=True)) / counts.sum())
    kept = prune(preds, value, counts, before, np.zeros(len(names)))
    dropped = [n for n, c in zip(names, kept, strict=True) if c == 0]
    out: dict[str, Any] = {"members": len(names), "dropped": dropped}
    if not dropped:
        return out
    after = value(sum(c * p for c, p in zip(kept, preds, strict=True)) / kept.sum())
    _, test = prepared_split(folder, table)
    X = test.drop(columns=[table.target])
    members = {n: load(job_dir / "candidates" / n / "model") for n in names}
    test_preds = {n: m.predictor.raw_predict(m.check(X)[0]) for n, m in members.items()}
    return {**out, "validation": [chooser.sign() * before, chooser.sign() * after],
            "test": [test_score(_Blend(test_preds, dict(zip(names, counts, strict=True)),
                                       first.classes), test, table),
                     test_score(_Blend(test_preds, {n: c for n, c in
                                                    zip(names, kept, strict=True) if c},
                                       first.classes), test, table)]}


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    args = parser.parse_args(argv)
    workspace = Path(args.workspace)
    folder = datasets_dir(args.datasets)
    tables = load_manifest(folder)
    db = sqlite3.connect(workspace / "tabpilot.db")
    rows = db.execute("select job, name, params from candidates where family = 'ensemble' "
                      "and status = 'Completed' and name not like '%-distilled'").fetchall()
    latency = {(j, n): ms for j, n, ms in
               db.execute("select job, name, latency_ms_p50 from candidates")}
    for job, name, params in rows:
        table = table_of(job, tables)
        found = pruned_ensemble(workspace / "jobs" / job, json.loads(params)["members"], table,
                                folder)
        if "skipped" in found:
            print(f"{table.name:24s} {name:20s} skipped: {found['skipped']}")
        elif not found["dropped"]:
            print(f"{table.name:24s} {name:20s} keeps its {found['members']} members")
        else:
            ms = [round(latency.get((job, n)) or 0.0, 2) for n in found["dropped"]]
            (v0, v1), (t0, t1) = found["validation"], found["test"]
            print(f"{table.name:24s} {name:20s} drops {', '.join(found['dropped'])} of "
                  f"{found['members']} ({ms} ms in the job): validation {v0:.6g} -> {v1:.6g}, "
                  f"test {t0:.6g} -> {t1:.6g}")


if __name__ == "__main__":
    main()
