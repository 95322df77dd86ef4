"""Data-quality monitoring: false alarms of the drift check on in-distribution windows,
and detection of a small mean shift, for the Robust and the Simple method.

    python -m bench.monitor [--datasets DIR] [--tables adult,diamonds] [--windows 100]

Writes bench/results/monitor.md and monitor.json.

Each table of ../shared/datasets with at least 20,000 rows (adult, bank_marketing,
electricity_elec2, california_housing, diamonds) is read as anchors.md says (the
manifest's missing markers and `drop` columns), its target left out, and shuffled
(seed 0). Its first min(10,000, half) rows become the baseline (`write_baseline`: the
statistics, the constraints, the kept sample of every numeric column); the other rows are
held out. Windows are drawn from the held-out rows (without replacement inside a window;
a window of 10,000 shares rows with the others, as the held-out part holds 10,000-38,000
rows, so at that size the 100 windows are not independent and the rate is less precise).

- False alarm: an in-distribution window of 200, 1,000 or 10,000 rows raises at least one
  baseline_drift_check (any feature). Goal: at most 5 %.
- Detection: a window of 1,000 rows (and, beside it, 200) in which one numeric feature
  (each window the next one, round robin) is shifted by 0.5 x its baseline standard
  deviation; detected when that feature gets a baseline_drift_check. Goal: at least 95 %
  at 1,000 rows.

Both methods are read off the same execution: Robust's verdict is the execution's; Simple
(Model Monitor's rule) flags every feature whose distance is above the threshold (0.1),
the same distances. Only the drift check is counted here; the other checks (types,
completeness, domains) are reported apart as "other checks" for Robust.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd

from bench.common import (
    DEFAULT_DATASETS,
    datasets_dir,
    load_manifest,
    load_table,
    log,
    markdown_table,
    select,
    write_results,
)
from tabpilot.monitor.baseline import write_baseline
from tabpilot.monitor.checks import evaluate
from tabpilot.monitor.statistics import NUMERIC

TABLES = "adult,bank_marketing,electricity_elec2,california_housing,diamonds"
SIZES = (200, 1_000, 10_000)
SHIFT_SIGMA = 0.5
SHIFT_ROWS = (1_000, 200)  # the goal is set at 1,000 rows; 200 shows the small-window cost


def _flags(execution) -> tuple[set[str], set[str]]:
    """(features Robust flags, features Simple flags) for drift."""
    robust = {name for name, d in execution.drift.items() if d["drift"]}
    simple = {name for name, d in execution.drift.items() if d["distance"] > d["threshold"]}
    return robust, simple


def bench_table(df: pd.DataFrame, windows: int, folder) -> dict[str, Any]:
    shuffled = df.sample(frac=1.0, random_state=0).reset_index(drop=True)
    n_base = min(10_000, len(shuffled) // 2)
    base_rows, held = shuffled.iloc[:n_base], shuffled.iloc[n_base:].reset_index(drop=True)
    baseline = write_baseline(base_rows, folder)
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"baseline_rows": n_base, "held_out_rows": len(held),
                           "features": len(df.columns), "alarms": {}}
    for size in SIZES:
        if size > len(held):
            continue
        counts = {"Robust": 0, "Simple": 0, "other_checks": 0}
        t0 = time.perf_counter()
        for _ in range(windows):
            window = held.iloc[rng.choice(len(held), size, replace=False)]
            execution = evaluate(baseline, window)
            robust, simple = _flags(execution)
            counts["Robust"] += bool(robust)
            counts["Simple"] += bool(simple)
            counts["other_checks"] += any(v["constraint_check_type"] != "baseline_drift_check"
                                          for v in execution.violations)
        out["alarms"][size] = {k: v / windows for k, v in counts.items()}
        out["alarms"][size]["seconds_per_window"] = (time.perf_counter() - t0) / windows
    numeric = [f["name"] for f in baseline.statistics["features"]
               if f["inferred_type"] in NUMERIC and f["numerical_statistics"]["std_dev"] > 0]
    std = {f["name"]: f["numerical_statistics"]["std_dev"]
           for f in baseline.statistics["features"] if f["name"] in numeric}
    out["detection"] = {}
    for size in SHIFT_ROWS:
        found = {"Robust": 0, "Simple": 0}
        for i in range(windows):
            feature = numeric[i % len(numeric)]
            window = held.iloc[rng.choice(len(held), size, replace=False)].copy()
            window[feature] = pd.to_numeric(window[feature], errors="coerce") \
                + SHIFT_SIGMA * std[feature]
            robust, simple = _flags(evaluate(baseline, window))
            found["Robust"] += feature in robust
            found["Simple"] += feature in simple
        out["detection"][size] = {k: v / windows for k, v in found.items()}
    out["shifted_features"] = numeric
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=str(DEFAULT_DATASETS))
    parser.add_argument("--tables", default=TABLES)
    parser.add_argument("--windows", type=int, default=100)
    args = parser.parse_args()
    folder = datasets_dir(args.datasets)
    import tempfile
    from pathlib import Path

    results: dict[str, Any] = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for table in select(load_manifest(folder), args.tables):
            log(f"{table.name} ...")
            df = load_table(folder, table).drop(columns=[table.target])
            t0 = time.perf_counter()
            found = bench_table(df, args.windows, Path(tmp) / table.name)
            found["seconds"] = round(time.perf_counter() - t0, 1)
            results[table.name] = found
            alarms = found["alarms"]
            rows.append([table.name, len(df), found["features"]]
                        + [f"{100 * alarms[s]['Robust']:.0f} / {100 * alarms[s]['Simple']:.0f}"
                           if s in alarms else "–" for s in SIZES]
                        + [f"{100 * found['detection'][s]['Robust']:.0f} / "
                           f"{100 * found['detection'][s]['Simple']:.0f}" for s in SHIFT_ROWS])
    mean = {}
    for size in SIZES:
        for method in ("Robust", "Simple"):
            values = [r["alarms"][size][method] for r in results.values() if size in r["alarms"]]
            mean[(size, method)] = float(np.mean(values)) if values else float("nan")
    detect = {(s, m): float(np.mean([r["detection"][s][m] for r in results.values()]))
              for s in SHIFT_ROWS for m in ("Robust", "Simple")}
    rows.append(["**mean**", "", ""]
                + [f"{100 * mean[(s, 'Robust')]:.1f} / {100 * mean[(s, 'Simple')]:.1f}"
                   for s in SIZES]
                + [f"{100 * detect[(s, 'Robust')]:.1f} / {100 * detect[(s, 'Simple')]:.1f}"
                   for s in SHIFT_ROWS])
    headers = ["table", "rows", "features"] + [f"false alarm % at {s:,} rows (Robust / Simple)"
                                                for s in SIZES] \
        + [f"detection % of a {SHIFT_SIGMA}-sigma shift at {s:,} rows (Robust / Simple)"
           for s in SHIFT_ROWS]
    text = (f"# Drift check: false alarms and detection ({args.windows} windows per cell)\n\n"
            + markdown_table(headers, rows)
            + "\n\nGoals: false alarms <= 5 % at every size, detection >= 95 % at 1,000 rows.\n")
    print(text)
    write_results("monitor", text, {"windows": args.windows, "tables": results,
                                    "mean_false_alarm": {f"{s}/{m}": v for (s, m), v in
                                                         mean.items()},
                                    "mean_detection": {f"{s}/{m}": v for (s, m), v in
                                                       detect.items()}})


if __name__ == "__main__":
    main()
