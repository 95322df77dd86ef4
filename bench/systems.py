"""Fit one other AutoML system on one table and print its scores as JSON.

    python -m bench.systems --system flaml --table penguins --budget 60 --datasets DIR

Runs in whichever venv holds the system: LightGBM is in tabpilot's own, FLAML and
AutoGluon in bench/.venv-anchors (`make bench-anchors`), whose pins clash with tabpilot's.
It imports only bench.common (numpy, pandas, scikit-learn), never tabpilot, so the split
and the scoring are the very code tabpilot is measured with. `bench.automl` starts it in a
subprocess per table and system; the last line of stdout is the JSON result.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import (
    Table,
    call_times_ms,
    datasets_dir,
    error_line,
    load_manifest,
    one_row_frames,
    prepared_split,
    score,
    select,
)

SYSTEMS = ("lightgbm", "flaml", "autogluon", "autogluon:best_quality")
LATENCY_CALLS = 200
LATENCY_SECONDS = 20.0  # AutoGluon answers one row in up to ~1 s: time-box the timing
MISSING = "missing"  # the system is not installed in this interpreter


class Fitted:
    """What bench.common.score needs (`classes`, `predict`, `predict_proba` as a DataFrame
    with one column per class) over a system's own model; `row` is its native one-row
    call, the one that is timed."""

    def __init__(self, classes: list[Any] | None, proba: Callable[[pd.DataFrame], Any],
                 predict: Callable[[pd.DataFrame], Any], row: Callable[[pd.DataFrame], Any]
                 ) -> None:
        self.classes = classes
        self._proba, self._predict, self.row = proba, predict, row

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._predict(X))

    def predict_proba(self, X: pd.DataFrame) -> pd.DataFrame:
        out = self._proba(X)
        if isinstance(out, pd.DataFrame):
            return out[self.classes]
        return pd.DataFrame(np.asarray(out), columns=self.classes, index=X.index)


# -- the systems ------------------------------------------------------------------------------

def fit_lightgbm(train: pd.DataFrame, table: Table, budget: float, workdir: Path) -> Fitted:
    """LightGBM with default parameters; text columns become native categoricals."""
    import lightgbm as lgb

    X, y = train.drop(columns=[table.target]), train[table.target]
    kinds = {c: pd.CategoricalDtype(X[c].dropna().unique()) for c in X.columns
             if not pd.api.types.is_numeric_dtype(X[c])}

    def encode(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.astype(kinds) if kinds else frame

    if table.is_classification:
        model = lgb.LGBMClassifier(verbose=-1).fit(encode(X), y)
        classes = list(model.classes_)
        return Fitted(classes, lambda f: model.predict_proba(encode(f)),
                      lambda f: model.predict(encode(f)),
                      lambda f: model.predict_proba(encode(f)))
    model = lgb.LGBMRegressor(verbose=-1).fit(encode(X), y)
    return Fitted(None, lambda f: None, lambda f: model.predict(encode(f)),
                  lambda f: model.predict(encode(f)))


FLAML_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def fit_flaml(train: pd.DataFrame, table: Table, budget: float, workdir: Path) -> Fitted:
    """FLAML's AutoML with the budget and the anchors' metric, everything else default."""
    from flaml import AutoML

    X, y = train.drop(columns=[table.target]), train[table.target]
    automl = AutoML()
    automl.fit(X_train=X, y_train=y, time_budget=budget, metric=FLAML_METRIC[table.task],
               task="classification" if table.is_classification else "regression",
               verbose=0, log_file_name=str(workdir / "flaml.log"))
    if table.is_classification:
        return Fitted(list(automl.classes_), automl.predict_proba, automl.predict,
                      automl.predict_proba)
    return Fitted(None, lambda f: None, automl.predict, automl.predict)


AUTOGLUON_METRIC = {"binary": "roc_auc", "multiclass": "log_loss",
                    "regression": "root_mean_squared_error"}


def fit_autogluon(train: pd.DataFrame, table: Table, budget: float, workdir: Path,
                  presets: str = "medium_quality") -> Fitted:
    """AutoGluon's TabularPredictor with the budget, the anchors' metric and `presets`."""
    from autogluon.tabular import TabularPredictor

    predictor = TabularPredictor(label=table.target, problem_type=table.task,
                                 eval_metric=AUTOGLUON_METRIC[table.task],
                                 path=str(workdir / "autogluon"), verbosity=0)
    predictor.fit(train, time_limit=budget, presets=presets)
    if table.is_classification:
        classes = list(predictor.class_labels)
        return Fitted(classes, predictor.predict_proba, predictor.predict,
                      predictor.predict_proba)
    return Fitted(None, lambda f: None, predictor.predict, predictor.predict)


def fit_autogluon_best(train: pd.DataFrame, table: Table, budget: float, workdir: Path
                       ) -> Fitted:
    return fit_autogluon(train, table, budget, workdir, presets="best_quality")


FIT = {"lightgbm": fit_lightgbm, "flaml": fit_flaml, "autogluon": fit_autogluon,
       "autogluon:best_quality": fit_autogluon_best}
MODULES = {"lightgbm": ["lightgbm"], "flaml": ["flaml", "lightgbm", "xgboost"],
           "autogluon": ["autogluon.tabular"], "autogluon:best_quality": ["autogluon.tabular"]}


def versions(system: str) -> dict[str, str]:
    import importlib

    found = {}
    for name in MODULES[system]:
        module = importlib.import_module(name)
        found[name] = str(getattr(module, "__version__", "?"))
    return found


def run(system: str, folder: Path, table: Table, budget: float) -> dict[str, Any]:
    """Fit, score and time one system on one table; errors are recorded, not raised."""
    record: dict[str, Any] = {"system": system, "table": table.name, "budget": budget,
                              "python": sys.executable}
    try:
        record["versions"] = versions(system)
    except ImportError as exc:
        return {**record, "status": MISSING, "error": error_line(exc)}
    train, test = prepared_split(folder, table)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{system.replace(':', '-')}-{table.name}-"))
    stage = "fit"
    try:
        start = time.perf_counter()
        model = FIT[system](train, table, budget, workdir)
        record["fit_seconds"] = time.perf_counter() - start
        stage = "score"
        record["score"] = score(model, test, table)
        stage = "latency"
        times = call_times_ms(model.row, one_row_frames(test, table.target, LATENCY_CALLS),
                              max_seconds=LATENCY_SECONDS)
        record.update(row_ms_p50=float(np.median(times)), row_calls=len(times), status="ok")
    except Exception as exc:  # reported in the table, the sweep goes on
        record.update(status="error", error=f"{stage}: {error_line(exc)}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=SYSTEMS, required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--datasets", required=True)
    args = parser.parse_args(argv)
    folder = datasets_dir(args.datasets)
    (table,) = select(load_manifest(folder), args.table)
    record = run(args.system, folder, table, args.budget)
    sys.stdout.write("\n" + json.dumps(record, default=str) + "\n")


if __name__ == "__main__":
    main()
