"""What recording training curves costs: fit time with and without, per family.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python -m bench.diagnostics_overhead \
        [--datasets DIR] [--tables adult,diamonds] [--families lightgbm,xgboost,mlp] \
        [--repeats 3]

Prints a Markdown table. One BLAS / OpenMP thread: the MLP's matrix products otherwise
spread over threads whose CPU time other processes' load inflates.

Each table of ../shared/datasets is read as its manifest says (missing markers, `drop`
columns), categories coded as integers (native categoricals for the boosting families),
shuffled (seed 0) and split 80/20 into training and validation rows, as a holdout trial
does. Each family fits its first portfolio configuration (early stopping on the
validation rows, one thread) with `FitData.curves` True and False, alternately, `repeats`
times, timed in CPU seconds of this process (one thread: less disturbed than wall time
by other processes on a shared machine); the table shows the median and the fastest of
each and the overhead of the medians. Both fits train the same rounds (checked), so the difference is the cost
of measuring the training loss each round (on at most CURVE_TRAIN_ROWS training rows)
and, for the MLP, the validation loss each epoch. CatBoost is left out: it measures its
training loss every round whether or not the curve is kept.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tabpilot.models import FitData, get_family
from tabpilot.tasks import ProblemType

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
TYPES = {"binary": ProblemType.BINARY, "multiclass": ProblemType.MULTICLASS,
         "regression": ProblemType.REGRESSION}


def load(datasets: Path, name: str):
    entry = next(e for e in json.loads((datasets / "manifest.json").read_text())
                 if e["name"] == name)
    frame = pd.read_csv(datasets / entry["file"], na_values=entry["na_values"])
    frame = frame.drop(columns=entry["drop"]).sample(frac=1.0, random_state=0)
    problem = TYPES[entry["task"]]
    target = frame.pop(entry["target"])
    y = pd.factorize(target)[0] if problem.is_classification else target.to_numpy(float)
    cats = [i for i, c in enumerate(frame.columns) if frame[c].dtype == object]
    columns = []
    for i, c in enumerate(frame.columns):
        if i in cats:
            codes = pd.factorize(frame[c])[0].astype(np.float64)
            columns.append(np.where(codes < 0, np.nan, codes))  # missing: NaN
        else:
            columns.append(frame[c].to_numpy(np.float64))
    return np.column_stack(columns), y, problem, cats


def fit_seconds(family: str, X, y, problem: ProblemType, cats: list[int], curves: bool
                ) -> tuple[float, int]:
    n_fit = int(len(y) * 0.8)
    fam = get_family(family)
    native = fam.style == "native"
    Xf = X if native else np.nan_to_num((X - np.nanmean(X, 0)) / (np.nanstd(X, 0) + 1e-9))
    data = FitData(X=Xf[:n_fit], y=y[:n_fit], problem_type=problem,
                   n_classes=int(y.max()) + 1 if problem.is_classification else 0,
                   categorical_indices=cats if native else [], X_valid=Xf[n_fit:],
                   y_valid=y[n_fit:], curves=curves)
    started = time.process_time()
    fam.fit(dict(fam.portfolio(problem)[0]), data)
    return time.process_time() - started, int(data.info.get("best_iteration")
                                              or data.info.get("epochs") or 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--tables", default="adult,california_housing,diamonds")
    parser.add_argument("--families", default="lightgbm,xgboost,mlp")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| table | rows | family | rounds | CPU s off (median / min) | CPU s on (median / min) "
          "| overhead (medians) |")
    print("|---|---|---|---|---|---|---|")
    for table in args.tables.split(","):
        X, y, problem, cats = load(args.datasets, table)
        for family in args.families.split(","):
            times: dict[bool, list[float]] = {True: [], False: []}
            rounds: dict[bool, int] = {}
            for _ in range(args.repeats):
                for curves in (False, True):
                    seconds, rounds[curves] = fit_seconds(family, X, y, problem, cats, curves)
                    times[curves].append(seconds)
            assert rounds[True] == rounds[False], (family, rounds)
            off, on = float(np.median(times[False])), float(np.median(times[True]))
            print(f"| {table} | {len(y):,} | {family} | {rounds[True]} | {off:.2f} / "
                  f"{min(times[False]):.2f} | {on:.2f} / {min(times[True]):.2f} | "
                  f"{(on - off) / off:+.1%} |", flush=True)


if __name__ == "__main__":
    main()
