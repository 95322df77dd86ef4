"""Learn the zero-shot portfolio: an ordered list of configurations per family and task kind.

    python -m bench.portfolio [--configs 8] [--max-rows 3000] [--datasets DIR]
                              [--out src/tabpilot/models/portfolio.json]

For every table (the datasets' tabular tables, scikit-learn's bundled ones and a few
generated ones) and every family, it trains the family's hand-written configurations and
`--configs` random draws from its search space on a subsample of the table (holdout, the
trial's own encoder and early stopping) and records the validation loss (log loss for
classification, RMSE over the target's spread for regression). Losses become ranks per
table and family (0 = the best configuration there, 1 = the worst). The portfolio is then
chosen greedily per family: first the configuration with the lowest mean rank, then each
time the one that most lowers the mean over tables of the best chosen so far.
Leave-one-table-out figures (the portfolio learned without a table, scored on it, beside
the hand-written one) are written to bench/results/portfolio.md, so the gain is measured
on tables the portfolio did not see; a family's learned list is shipped only where it wins
there, and the hand-written one stays otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn import datasets as skdata
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from bench.common import (
    base_parser,
    datasets_dir,
    load_manifest,
    load_table,
    log,
    markdown_table,
    write_results,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
FIT_SECONDS = 30.0
SEARCH_ROWS = 5000  # the n_rows the search spaces are drawn for
BOOSTING = ("lightgbm", "xgboost", "catboost")


@dataclass
class Task:
    name: str
    X: pd.DataFrame
    y: np.ndarray
    problem_type: Any
    schema: Any
    n_classes: int
    train: np.ndarray
    valid: np.ndarray

    @property
    def kind(self) -> str:
        return "classification" if self.n_classes else "regression"


def _tables(folder: Path) -> list[tuple[str, pd.DataFrame, str]]:
    out = [(t.name, load_table(folder, t), t.target) for t in load_manifest(folder)]
    for name, loader in (("sk_breast_cancer", skdata.load_breast_cancer),
                         ("sk_wine", skdata.load_wine), ("sk_iris", skdata.load_iris),
                         ("sk_digits", skdata.load_digits), ("sk_diabetes", skdata.load_diabetes)):
        frame = loader(as_frame=True).frame
        out.append((name, frame, "target"))
    X, y = skdata.make_classification(3000, 20, n_informative=6, flip_y=0.05, class_sep=0.8,
                                      random_state=1)
    out.append(("gen_binary", pd.DataFrame(X).add_prefix("f").assign(target=y), "target"))
    X, y = skdata.make_classification(3000, 15, n_informative=8, n_classes=4, random_state=2)
    out.append(("gen_multiclass", pd.DataFrame(X).add_prefix("f").assign(target=y), "target"))
    X, y = skdata.make_friedman1(3000, n_features=10, noise=1.0, random_state=3)
    out.append(("gen_friedman", pd.DataFrame(X).add_prefix("f").assign(target=y), "target"))
    return out


def _task(name: str, df: pd.DataFrame, target: str, max_rows: int) -> Task:
    from tabpilot.data.prepare import prepare

    prepared = prepare(df, target)
    X, y = prepared.X, prepared.y
    classification = prepared.problem_type.is_classification
    if len(y) > max_rows:
        keep, _ = train_test_split(np.arange(len(y)), train_size=max_rows, random_state=0,
                                   stratify=y if classification else None)
        keep = np.sort(keep)
        X, y = X.iloc[keep].reset_index(drop=True), y[keep]
    strat = y if classification and np.bincount(y).min() >= 2 else None
    train, valid = train_test_split(np.arange(len(y)), test_size=0.25, random_state=0,
                                    stratify=strat)
    return Task(name, X, y, prepared.problem_type, prepared.schema,
                len(prepared.classes or []), np.sort(train), np.sort(valid))


TASKS: list[Task] = []  # filled before the pool forks, shared by its processes


def evaluate(job: tuple[int, str, dict[str, Any]]) -> float:
    """Validation loss of one configuration on one table (inf when it fails)."""
    from tabpilot.features import build_encoder
    from tabpilot.models import FitData, get_family

    warnings.filterwarnings("ignore")
    i, family_name, params = job
    t = TASKS[i]
    family = get_family(family_name)
    try:
        encoder = build_encoder(t.schema, family.style).fit(t.X.iloc[t.train])
        encoded = encoder.transform(t.X)
        cats = encoder.categorical_indices_ if family.style == "native" else []
        data = FitData(encoded[t.train], t.y[t.train], t.problem_type, t.n_classes, cats,
                       X_valid=encoded[t.valid], y_valid=t.y[t.valid],
                       deadline=time.time() + FIT_SECONDS, n_threads=1, seed=0)
        estimator = family.fit(dict(params), data)
        pred = family.predict(estimator, encoded[t.valid], t.problem_type)
        if t.n_classes:
            pred = np.clip(pred, 1e-15, 1)
            return float(log_loss(t.y[t.valid], pred / pred.sum(1, keepdims=True),
                                  labels=list(range(t.n_classes))))
        return float(np.sqrt(np.mean((t.y[t.valid] - pred) ** 2)) / (np.std(t.y) or 1.0))
    except Exception as exc:  # a configuration that cannot train here just loses
        log(f"  {t.name} {family_name}: {type(exc).__name__}: {exc}")
        return float("inf")


def candidates(family_name: str, n_random: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    """Per task kind: the hand-written configurations, then random draws of the space."""
    from tabpilot.models import get_family
    from tabpilot.tasks import ProblemType

    family = get_family(family_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    draws = [family.params(study.ask(), SEARCH_ROWS) for _ in range(n_random)]
    out = {}
    for kind, ptype in (("classification", ProblemType.BINARY),
                        ("regression", ProblemType.REGRESSION)):
        hand = family.portfolio(ptype)
        keys = set(hand[0])
        out[kind] = hand + [{k: v for k, v in d.items() if k in keys} for d in draws]
    return out


def normalise(losses: np.ndarray) -> np.ndarray:
    """Per table (rows): each configuration's rank among those tried there, scaled to 0 (the
    best) .. 1 (the worst); a failed fit ranks last. Ranks, not loss ratios: a few tables
    with wide loss spreads must not decide the portfolio."""
    filled = np.where(np.isfinite(losses), losses, np.inf)
    ranks = np.argsort(np.argsort(filled, axis=1, kind="stable"), axis=1, kind="stable")
    return ranks / max(losses.shape[1] - 1, 1)


def greedy(norm: np.ndarray, size: int) -> list[int]:
    """Configurations (columns) chosen one by one to minimise the mean best-so-far loss."""
    chosen: list[int] = []
    covered = np.full(norm.shape[0], np.inf)
    for _ in range(min(size, norm.shape[1])):
        gains = [np.mean(np.minimum(covered, norm[:, c])) if c not in chosen else np.inf
                 for c in range(norm.shape[1])]
        pick = int(np.argmin(gains))
        chosen.append(pick)
        covered = np.minimum(covered, norm[:, pick])
    return chosen


def main(argv: list[str] | None = None) -> None:
    from tabpilot.models import FAMILIES
    from tabpilot.models.portfolio import PORTFOLIO_FILE

    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=8, help="random draws per family")
    parser.add_argument("--max-rows", type=int, default=3000)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", default=str(PORTFOLIO_FILE))
    args = parser.parse_args(argv)
    folder = datasets_dir(args.datasets)
    started = time.time()
    for name, df, target in _tables(folder):
        TASKS.append(_task(name, df, target, args.max_rows))
    log(f"portfolio: {len(TASKS)} tables, families {args.families}")
    families = [f for f in args.families.split(",") if f]
    result: dict[str, dict[str, list[dict[str, Any]]]] = {}
    rows: list[list[Any]] = []
    context = multiprocessing.get_context("fork")
    with context.Pool(args.processes, maxtasksperchild=50) as pool:
        for f_index, family in enumerate(families):
            size = 3 if family in BOOSTING else 2
            result[family] = {}
            for kind, configs in candidates(family, args.configs, seed=f_index).items():
                tables = [i for i, t in enumerate(TASKS) if t.kind == kind]
                jobs = [(i, family, c) for i in tables for c in configs]
                losses = np.array(pool.map(evaluate, jobs, chunksize=1)).reshape(
                    len(tables), len(configs))
                norm = normalise(losses)
                chosen = greedy(norm, size)
                learned = [configs[c] for c in chosen]
                hand = list(range(len(FAMILIES[family].portfolio(
                    TASKS[tables[0]].problem_type))))
                loo_learned, loo_hand = [], []
                for k in range(len(tables)):  # leave one table out
                    others = np.delete(np.arange(len(tables)), k)
                    picked = greedy(normalise(losses[others]), size)
                    loo_learned.append(norm[k, picked].min())
                    loo_hand.append(norm[k, hand].min())
                # kept only where it beats the hand-written portfolio on unseen tables
                keep = np.mean(loo_learned) < np.mean(loo_hand)
                if keep:
                    result[family][kind] = learned
                rows.append([family, kind, len(tables), len(configs), len(chosen),
                             f"{np.mean(loo_hand):.3f}", f"{np.mean(loo_learned):.3f}",
                             "learned" if keep else "hand-written"])
                log(f"  {family} {kind}: hand {np.mean(loo_hand):.3f} -> learned "
                    f"{np.mean(loo_learned):.3f} (leave-one-table-out normalised loss)")
    Path(args.out).write_text(json.dumps({
        "generated": dt.date.today().isoformat(),
        "command": f"python -m bench.portfolio --configs {args.configs} --max-rows {args.max_rows}",
        "tables": [t.name for t in TASKS],
        "families": result,
    }, indent=1, default=float) + "\n")
    md = markdown_table(["family", "task", "tables", "configurations tried", "kept",
                         "hand-written: LOO loss", "learned: LOO loss", "shipped"], rows)
    md += f"\n\n{len(TASKS)} tables, {time.time() - started:.0f} s; loss 0 = the best " \
          "configuration tried on the table, 1 = the worst (mean rank of the portfolio's best).\n"
    write_results("portfolio", md, {"rows": rows})
    print(md)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
