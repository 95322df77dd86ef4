"""What compiling a member costs at an ensemble's packaging, against the member's size.

    python -m bench.compile_cost [--datasets DIR] [--quick]

Trains tree models (one model, or a bag of fold models as a k-fold trial leaves) on a
few tables, packages each without its compiled path (as a trial past its deadline), then
times what `artifacts/composite.py` does for such a member: build the forest, check it
against the Python path on 500 rows (plus the one-row frames), write it and hash it into
the manifest. Prints model bytes on disk, the forest's size (nodes plus leaf values, as
`compiled.MAX_NODES` counts it) and the seconds, and fits seconds = a + bytes * b.
The kernel library is built once per machine and C source (artifacts/compiled/native.py);
its cold build is timed once too. Results go to bench/results/compile-cost.md and .json.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

from bench.common import (
    base_parser,
    datasets_dir,
    load_manifest,
    load_table,
    log,
    markdown_table,
    write_results,
)
from tabpilot.artifacts import Predictor, compiled, load, manifest, package
from tabpilot.artifacts.compiled import native
from tabpilot.data.schema import infer_schema
from tabpilot.features import build_encoder
from tabpilot.models import FitData, get_family
from tabpilot.tasks import ProblemType

# (table, family, n_estimators, bag folds); bags of 5 are what a k-fold trial leaves
CASES: list[tuple[str, str, int, int]] = [
    ("wine_quality", "lightgbm", 300, 1),
    ("wine_quality", "lightgbm", 300, 5),
    ("wine_quality", "xgboost", 300, 1),
    ("wine_quality", "catboost", 300, 1),
    ("wine_quality", "random_forest", 200, 1),
    ("wine_quality", "extra_trees", 200, 5),
    ("california_housing", "lightgbm", 500, 1),
    ("california_housing", "random_forest", 100, 1),
    ("california_housing", "extra_trees", 100, 3),
    ("adult", "lightgbm", 300, 1),
    ("adult", "xgboost", 300, 5),
    ("adult", "catboost", 300, 1),
    ("adult", "random_forest", 100, 1),
]
QUICK = [c for c in CASES if c[0] == "wine_quality" and c[3] == 1]
CHECK_ROWS = 500  # execution.base.RAW_VALIDATION_ROWS
HEADERS = ["table", "model", "bag", "MB on disk", "forest size (M)", "build s", "check s",
           "write+hash s", "total s", "s per MB"]


def _predictor(df: pd.DataFrame, target: str, task: str, family_name: str, n_estimators: int,
               folds: int) -> tuple[Predictor, pd.DataFrame]:
    problem = ProblemType(task)
    X, y_raw = df.drop(columns=[target]), df[target]
    classes = sorted(y_raw.unique().tolist()) if problem.is_classification else None
    y = y_raw.map({c: i for i, c in enumerate(classes)}).to_numpy() if classes else \
        y_raw.to_numpy(dtype=float)
    schema = infer_schema(X)
    family = get_family(family_name)
    encoder = build_encoder(schema, family.style).fit(X)
    encoded = encoder.transform(X)
    params = dict(family.portfolio(problem)[0], n_estimators=n_estimators)
    splits = [(np.arange(len(X)), None)] if folds == 1 else \
        list(KFold(folds, shuffle=True, random_state=0).split(X))
    estimators = []
    for i, (train, _) in enumerate(splits):
        data = FitData(encoded[train], y[train], problem, len(classes or []),
                       encoder.categorical_indices_, n_threads=2, seed=i)
        estimators.append(family.fit(params, data))
    predictor = Predictor(encoder, family_name, estimators, problem, schema.features, classes,
                          threshold=0.5 if classes and len(classes) == 2 else None)
    return predictor, X.sample(CHECK_ROWS, random_state=1)


def measure(predictor: Predictor, sample: pd.DataFrame, folder: Path) -> dict[str, float]:
    """Package without the compiled path, then compile it as a composite's packaging does."""
    out = package.save(predictor, {"candidate": "m"}, folder / "model", sample=sample,
                       deadline=0.0)
    model_bytes = package.directory_bytes(out)
    member = load(out).predictor  # as ensembling.build loads it (not timed: counted apart)
    t0 = time.perf_counter()
    forest = compiled.build_forest(member)
    t1 = time.perf_counter()
    candidate = compiled.CompiledPredictor(member, forest, native.library())
    compiled.check(member, candidate, sample)
    t2 = time.perf_counter()
    target = folder / "written"
    target.mkdir()
    forest.save(target / compiled.FOREST_FILE)
    manifest.entry(target / compiled.FOREST_FILE)
    t3 = time.perf_counter()
    a = forest.arrays
    size = len(a["nodes"]) + a["leaves"].size + len(a["osplits"]) + a["oleaves"].size
    return {"bytes": model_bytes, "forest_size": int(size), "build_s": t1 - t0,
            "check_s": t2 - t1, "write_s": t3 - t2, "total_s": t3 - t0}


def cold_kernel_seconds() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        native.build(Path(tmp) / "kernel.so")
        return time.perf_counter() - start


def fit_line(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """Least squares seconds = a + b * bytes."""
    x = np.array([r["bytes"] for r in rows], dtype=float)
    y = np.array([r["total_s"] for r in rows])
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="wine_quality's single models")
    args = parser.parse_args()
    tables = {t.name: t for t in load_manifest(datasets_dir(args.datasets))}
    frames: dict[str, pd.DataFrame] = {}
    rows: list[dict[str, Any]] = []
    for table_name, family, n_estimators, folds in QUICK if args.quick else CASES:
        table = tables[table_name]
        if table_name not in frames:
            frames[table_name] = load_table(Path(args.datasets), table)
        log(f"{table_name} {family} x{folds} ...")
        predictor, sample = _predictor(frames[table_name], table.target, table.task, family,
                                       n_estimators, folds)
        with tempfile.TemporaryDirectory() as tmp:
            found = measure(predictor, sample, Path(tmp))
        rows.append({"table": table_name, "family": family, "n_estimators": n_estimators,
                     "bag": folds, **found})
        log(f"  {found}")
    a, b = fit_line(rows)
    cold = cold_kernel_seconds()
    md_rows = [[r["table"], f"{r['family']} {r['n_estimators']}", r["bag"],
                f"{r['bytes'] / 1e6:.1f}", f"{r['forest_size'] / 1e6:.2f}",
                f"{r['build_s']:.2f}", f"{r['check_s']:.2f}", f"{r['write_s']:.2f}",
                f"{r['total_s']:.2f}", f"{r['total_s'] / (r['bytes'] / 1e6):.3f}"]
               for r in rows]
    markdown = "\n".join([
        "# Compiling a member at an ensemble's packaging", "",
        markdown_table(HEADERS, md_rows), "",
        f"Least squares: seconds = {a:.3f} + {b * 1e6:.4f} * MB; "
        f"kernel library cold build (once per machine): {cold:.2f} s",
    ])
    print(markdown)
    write_results("compile-cost", markdown, {"rows": rows, "fit": {"a": a, "b_per_byte": b},
                                             "cold_kernel_s": cold})


if __name__ == "__main__":
    main()
