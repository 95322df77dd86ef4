"""Leak detection: false alarms on the public tables, and planted leaks found.

    python -m bench.leaks [--datasets DIR] [--tables adult,penguins] [--seeds 1]

Writes bench/results/leaks.md and leaks.json.

Each of the 16 tabular tables of ../shared/datasets is prepared as anchors.md says (its
known leaks, the manifest's `drop` columns, removed), sampled as the profile samples it
(10,000 rows, seed 0) and searched for leaks. Every flag found there is a false alarm: the
goal is no high-severity flag at all.

Then each kind of leak is planted in each table, one at a time, at three noise levels, and
the planted column counts as found when it is flagged high or medium:

- copy: the label (classes: as text; numbers: the value) with a share of the rows wrong
  (classes: another class; numbers: another row's value), like clerical errors;
- scaled: a*target + b (classes: the class number) plus Gaussian noise, with the same share
  of wrong rows;
- monotone (numbers): log(target - min + 1), with the same share of wrong rows;
- bucketed (numbers): the target cut by value into 5 quantile buckets named as text, with
  the noise share of the rows in a wrong bucket;
- label text (classes whose labels are words): a note that names the class label in 90 %
  of the rows, the wrong label in the noise share;
- sorted id: an integer `record_id` given in target order, with the noise share of the ids
  shuffled (found when flagged medium, as ids are not used as features).

Noise levels: 1 %, 2 % and 5 % of the rows (scaled numbers: Gaussian noise of 5 %, 10 % and
20 % of the target's spread, plus 1 % wrong rows). Also timed: the whole detection on a
10,000 x 50 mixed table (warm, median of 5).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
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
from tabpilot.data.leaks import Leak, find_leaks
from tabpilot.data.prepare import prepare
from tabpilot.data.profile import _sample
from tabpilot.data.schema import Schema, infer_schema
from tabpilot.tasks import ProblemType

NOISE = (0.01, 0.02, 0.05)
SCALE_NOISE = {0.01: 0.05, 0.02: 0.10, 0.05: 0.20}  # Gaussian noise / target spread
PLANTED = "planted"


def _wrong(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    return rng.permutation(n) < round(share * n)


def _other_class(rng: np.random.Generator, y: np.ndarray, k: int) -> np.ndarray:
    return (y + rng.integers(1, k, len(y))) % k


def _noisy_classes(rng: np.random.Generator, y: np.ndarray, k: int, share: float) -> np.ndarray:
    return np.where(_wrong(rng, len(y), share), _other_class(rng, y, k), y)


def _noisy_values(rng: np.random.Generator, y: np.ndarray, share: float) -> np.ndarray:
    return np.where(_wrong(rng, len(y), share), rng.permutation(y), y)


def _copy(rng, y, ptype, classes, share):
    if ptype.is_classification:
        names = np.array([f"c_{c}" for c in classes], dtype=object)
        return pd.Series(names[_noisy_classes(rng, y, len(classes), share)])
    return pd.Series(_noisy_values(rng, y, share))


def _scaled(rng, y, ptype, classes, share):
    if ptype.is_classification:
        base = _noisy_classes(rng, y, len(classes), share).astype(float)
        return pd.Series(3.7 * base - 12 + rng.normal(0, 0.3, len(y)))
    noisy = _noisy_values(rng, y, 0.01)
    return pd.Series(2.5 * noisy + 100 + rng.normal(0, SCALE_NOISE[share] * np.std(y), len(y)))


def _monotone(rng, y, ptype, classes, share):
    return pd.Series(np.log(_noisy_values(rng, y, share) - y.min() + 1)) \
        if not ptype.is_classification else None


def _bucketed(rng, y, ptype, classes, share):
    if ptype.is_classification:
        return None
    # by value: equal targets share a bucket (so a heavily tied target may get fewer)
    buckets = pd.qcut(y, 5, labels=False, duplicates="drop")
    k = int(buckets.max()) + 1
    names = np.array(["very low", "low", "middle", "high", "very high"][:k], dtype=object)
    return pd.Series(names[_noisy_classes(rng, buckets, k, share)])


def _label_text(rng, y, ptype, classes, share):
    if not ptype.is_classification or not all(any(ch.isalpha() for ch in str(c))
                                              for c in classes):
        return None
    said = _noisy_classes(rng, y, len(classes), share)
    words = ["checked", "by", "agent", "call", "back", "ok", "account", "reviewed", "then"]
    notes = []
    for c in said:
        filler = " ".join(rng.choice(words, 3))
        notes.append(f"{filler} #{rng.integers(1000, 99999)}" if rng.random() < 0.1 else
                     f"{filler}: {str(classes[c]).strip(' .')} #{rng.integers(1000, 99999)}")
    return pd.Series(notes)


def _sorted_id(rng, y, ptype, classes, share):
    order = np.argsort(np.asarray(y, dtype=float) + rng.random(len(y)) * 1e-6, kind="stable")
    ids = np.empty(len(y), dtype=np.int64)
    ids[order] = np.arange(100_000, 100_000 + len(y))
    moved = np.flatnonzero(_wrong(rng, len(y), share))
    ids[moved] = ids[rng.permutation(moved)]
    return pd.Series(ids)


KINDS: dict[str, Callable[..., pd.Series | None]] = {
    "copy": _copy, "scaled": _scaled, "monotone": _monotone, "bucketed": _bucketed,
    "label text": _label_text, "sorted id": _sorted_id}


def _with_column(X: pd.DataFrame, schema: Schema, name: str, values: pd.Series
                 ) -> tuple[pd.DataFrame, Schema]:
    values.index = X.index
    planted = X.assign(**{name: values})
    kinds = dict(schema.kinds)
    kinds[name] = infer_schema(planted[[name]]).kinds[name]
    return planted, Schema(kinds)


def _found(leaks: list[Leak], column: str) -> str | None:
    return next((leak.severity for leak in leaks if leak.column == column
                 and leak.severity in ("high", "medium")), None)


def _clean(name: str, X, y, schema, ptype, classes) -> list[dict[str, Any]]:
    return [{"table": name, "column": leak.column, "severity": leak.severity,
             "rule": leak.rule, "message": leak.message}
            for leak in find_leaks(X, y, schema, ptype, classes)]


def _timing(seed: int = 0) -> dict[str, float]:
    """Warm seconds of find_leaks on 10,000 x 50: 35 numbers, 10 categories, 5 texts."""
    rng = np.random.default_rng(seed)
    n = 10_000
    y = rng.integers(0, 2, n)
    cols: dict[str, Any] = {f"n{i}": rng.normal(size=n) + 0.1 * i * y for i in range(35)}
    cols.update({f"c{i}": rng.choice([f"v{j}" for j in range(3 + 4 * i)], n) for i in range(10)})
    cols.update({f"t{i}": [f"note {j} about {w}" for j, w in
                           zip(rng.integers(0, 10**6, n), rng.choice(["x", "y", "z"], n),
                               strict=True)] for i in range(5)})
    X = pd.DataFrame(cols)
    schema = infer_schema(X)
    out = {}
    for ptype, target, classes in [(ProblemType.BINARY, y, ["no", "yes"]),
                                   (ProblemType.REGRESSION, y + rng.normal(size=n), None)]:
        find_leaks(X, target, schema, ptype, classes)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            find_leaks(X, target, schema, ptype, classes)
            times.append(time.perf_counter() - start)
        out[ptype.value] = float(np.median(times))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=str(DEFAULT_DATASETS),
                        help="the datasets folder (default ../shared/datasets from the repo root)")
    parser.add_argument("--tables", help="comma-separated table names (default: all 16)")
    parser.add_argument("--seeds", type=int, default=1, help="plantings per case (default 1)")
    args = parser.parse_args()
    folder = datasets_dir(args.datasets)
    tables = select(load_manifest(folder), args.tables)
    flags: list[dict[str, Any]] = []
    found: dict[tuple[str, float], list[str | None]] = {}
    seconds: list[tuple[str, float]] = []
    for table in tables:
        log(f"{table.name}...")
        prepared = prepare(load_table(folder, table), table.target,
                           ProblemType(table.task))
        X, y = _sample(prepared.X, prepared.y, 0)
        X = X.reset_index(drop=True)
        ptype, classes, schema = prepared.problem_type, prepared.classes, prepared.schema
        start = time.perf_counter()
        flags += _clean(table.name, X, y, schema, ptype, classes)
        seconds.append((table.name, time.perf_counter() - start))
        for kind, plant in KINDS.items():
            for share in NOISE:
                for seed in range(args.seeds):
                    rng = np.random.default_rng(seed)
                    values = plant(rng, y, ptype, classes or [], share)
                    if values is None:
                        continue
                    column = "record_id" if kind == "sorted id" else PLANTED
                    Xp, sp = _with_column(X, schema, column, values)
                    leaks = find_leaks(Xp, y, sp, ptype, classes)
                    found.setdefault((kind, share), []).append(_found(leaks, column))
                    if _found(leaks, column) is None:
                        log(f"  missed: {kind} at {share:.0%}")
    print(report(flags, found, seconds, _timing(), len(tables)))


def report(flags: list[dict[str, Any]], found: dict[tuple[str, float], list[str | None]],
           seconds: list[tuple[str, float]], timing: dict[str, float], n_tables: int) -> str:
    high = [f for f in flags if f["severity"] == "high"]
    tables_high = len({f["table"] for f in high})
    lines = [f"## Clean tables ({n_tables}): flags found",
             f"high: {len(high)} ({tables_high}/{n_tables} tables), medium: "
             f"{sum(f['severity'] == 'medium' for f in flags)}, low: "
             f"{sum(f['severity'] == 'low' for f in flags)}", ""]
    if flags:
        lines.append(markdown_table(["table", "severity", "rule", "column", "message"],
                                    [[f["table"], f["severity"], f["rule"], f["column"],
                                      f["message"][:120]] for f in flags]))
    lines += ["", "## Planted leaks: found (high or medium) / planted, and how many high", ""]
    rows = []
    for kind in KINDS:
        row: list[Any] = [kind]
        for share in NOISE:
            got = found.get((kind, share), [])
            hits = sum(g is not None for g in got)
            row.append(f"{hits}/{len(got)} ({sum(g == 'high' for g in got)} high)"
                       if got else "n/a")
        rows.append(row)
    lines.append(markdown_table(["kind"] + [f"{s:.0%} noise" for s in NOISE], rows))
    lines += ["", "## Seconds (find_leaks on each table's 10,000-row sample, cold first call "
              "included)", "", markdown_table(["table", "seconds"],
                                              [[n, f"{s:.3f}"] for n, s in seconds]),
              "", "10,000 x 50 mixed table, warm median of 5: " + ", ".join(
                  f"{k} {v:.3f} s" for k, v in timing.items())]
    text = "\n".join(lines)
    write_results("leaks", text, {"flags": flags, "seconds": dict(seconds), "timing": timing,
                                  "found": {f"{k}@{s}": v for (k, s), v in found.items()}})
    return text


if __name__ == "__main__":
    main()
