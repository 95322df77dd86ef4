"""What the benchmark scripts share: the tables, their preparation and scoring, the anchors.

Every table is prepared exactly as ../shared/datasets/anchors.md says, so the figures
compare with the anchors measured there:
1. read the file with the manifest's `na_values` as missing markers;
2. drop the manifest's `drop` columns and the rows whose target is missing;
3. train_test_split(test_size=0.25, random_state=0, stratify=target if classification);
4. fit on the 75 %, score the 25 %: ROC AUC (binary; positive class = the later label in
   sorted order), log loss over all classes (multiclass), RMSE (regression).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASETS = REPO_ROOT.parent / "shared" / "datasets"  # ../shared/datasets
RESULTS_DIR = REPO_ROOT / "bench" / "results"
# the other systems' runs this project measured at budgets anchors.md lacks, kept in git
BASELINES_DIR = REPO_ROOT / "bench" / "baselines"
DEFAULT_WORKSPACE = RESULTS_DIR / "workspace"

TASKS = ("binary", "multiclass", "regression")
METRIC_FOR_TASK = {"binary": "AUC", "multiclass": "LogLoss", "regression": "RMSE"}
GREATER_IS_BETTER = {"AUC": True, "LogLoss": False, "RMSE": False}
ANCHOR_DIGITS = 4  # anchors.md prints every score with 4 decimals; ties are judged there


@dataclass(frozen=True)
class Table:
    """One entry of manifest.json."""

    name: str
    file: str
    task: str
    target: str
    na_values: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    # the manifest's notes ask some tables (ames_housing) to be read with only its markers
    keep_default_na: bool = True

    @property
    def metric(self) -> str:
        return METRIC_FOR_TASK[self.task]

    @property
    def is_classification(self) -> bool:
        return self.task in ("binary", "multiclass")


# -- the tables ------------------------------------------------------------------------------

def datasets_dir(path: str | Path) -> Path:
    """The datasets folder, or a one-line exit when it is absent."""
    folder = Path(path)
    if not (folder / "manifest.json").is_file():
        sys.exit(f"error: datasets folder {folder} not found (no manifest.json there); "
                 "pass --datasets DIR")
    return folder


def load_manifest(folder: Path, tasks: Sequence[str] = TASKS) -> list[Table]:
    """The manifest's tables of the given tasks, in manifest order."""
    entries = json.loads((folder / "manifest.json").read_text())
    return [Table(e["name"], e["file"], e["task"], e["target"], list(e.get("na_values") or []),
                  list(e.get("drop") or []),
                  "keep_default_na=False" not in (e.get("notes") or ""))
            for e in entries if e["task"] in tasks]


def select(tables: list[Table], names: str | None) -> list[Table]:
    """The tables named in a comma-separated list (all when None), or a one-line exit."""
    if not names:
        return tables
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {t.name: t for t in tables}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        sys.exit(f"error: unknown table(s) {', '.join(unknown)}; "
                 f"choose from: {', '.join(known)}")
    return [known[n] for n in wanted]


def load_table(folder: Path, table: Table) -> pd.DataFrame:
    """Steps 1-2: read with the manifest's missing markers, drop leaky columns and rows."""
    df = pd.read_csv(folder / table.file, na_values=table.na_values, keep_default_na=table.keep_default_na)
    df = df.drop(columns=table.drop)
    return df.loc[df[table.target].notna()].reset_index(drop=True)


def split_table(df: pd.DataFrame, table: Table) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Step 3: the 75 % / 25 % split the anchors used."""
    stratify = df[table.target] if table.is_classification else None
    train, test = train_test_split(df, test_size=0.25, random_state=0, stratify=stratify)
    return train, test


def prepared_split(folder: Path, table: Table) -> tuple[pd.DataFrame, pd.DataFrame]:
    return split_table(load_table(folder, table), table)


def score(model: Any, test: pd.DataFrame, table: Table) -> float:
    """Step 4: the anchors' metric of `model` on the test part."""
    X, y = test.drop(columns=[table.target]), test[table.target].to_numpy()
    if table.task == "regression":
        return float(math.sqrt(mean_squared_error(y, np.asarray(model.predict(X), dtype=float))))
    proba = model.predict_proba(X)
    if table.task == "binary":
        positive = sorted(model.classes)[-1]
        return float(roc_auc_score(y == positive, proba[positive].to_numpy()))
    labels = list(model.classes)
    return float(log_loss(y, proba[labels].to_numpy(), labels=labels))


def compare(value: float | None, anchor: float | None, metric: str) -> str | None:
    """'win' (strictly better in the metric's direction), 'tie', 'loss'; None without anchor."""
    if anchor is None:
        return None
    if value is None or not math.isfinite(value):
        return "loss"
    a, b = round(value, ANCHOR_DIGITS), round(anchor, ANCHOR_DIGITS)
    if a == b:
        return "tie"
    return "win" if (a > b) == GREATER_IS_BETTER[metric] else "loss"


# -- tabpilot ---------------------------------------------------------------------------------

def job_name(prefix: str, table: Table, budget: float) -> str:
    """A fresh, valid job name (1-32 letters, digits, hyphens)."""
    suffix = f"-{budget:g}s-{secrets.token_hex(2)}".replace(".", "p")
    stem = re.sub(r"[^A-Za-z0-9]+", "-", f"{prefix}-{table.name}")
    return stem[: 32 - len(suffix)].strip("-") + suffix


def fit_tabpilot(train: pd.DataFrame, table: Table, budget: float, workspace: Path,
                 prefix: str, **settings: Any) -> tuple[Any, float]:
    """Fit tabpilot on the train part; return the job and the wall seconds around fit."""
    import tabpilot

    automl = tabpilot.AutoML(target=table.target, time_limit=budget, metric=table.metric,
                             problem_type=table.task, workspace=workspace,
                             name=job_name(prefix, table, budget),
                             na_values=table.na_values or None,
                             **{"verbosity": 0, **settings})  # the bench prints its own lines
    start = time.perf_counter()
    automl.fit(train)
    return automl, time.perf_counter() - start


def one_row_frames(test: pd.DataFrame, target: str, n: int) -> list[pd.DataFrame]:
    """`n` one-row feature frames, cycling through the test rows."""
    X = test.drop(columns=[target])
    return [X.iloc[[i % len(X)]] for i in range(n)]


def call_times_ms(fn: Callable[[pd.DataFrame], Any], frames: list[pd.DataFrame],
                  warmup: int = 5, max_seconds: float | None = None) -> np.ndarray:
    """Milliseconds of each call of fn on each frame, after a few warm-up calls.

    With `max_seconds`, the timing stops once that much time has gone (after at least 10
    calls), so a model answering in a second per row does not take minutes."""
    for frame in frames[:warmup]:
        fn(frame)
    times: list[float] = []
    box = None if max_seconds is None else time.perf_counter() + max_seconds
    for frame in frames:
        start = time.perf_counter()
        fn(frame)
        times.append(time.perf_counter() - start)
        if box is not None and len(times) >= 10 and time.perf_counter() > box:
            break
    return np.asarray(times) * 1000.0


# -- anchors.md -------------------------------------------------------------------------------

def _cell(text: str) -> float | str | None:
    text = text.strip()
    if text in ("–", "-", ""):
        return None
    try:
        return float(text)
    except ValueError:
        return text


def parse_anchors(path: Path, budget: float) -> dict[str, dict[str, Any]] | None:
    """The table under '## Budget <budget> s' as {table: {column: value}}; None if absent."""
    lines = path.read_text().splitlines()
    heading = re.compile(rf"^##\s+Budget\s+{re.escape(f'{budget:g}')}\s*s\s*$")
    start = next((i for i, line in enumerate(lines) if heading.match(line.strip())), None)
    if start is None:
        return None
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        if line.strip().startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    if len(rows) < 2:
        return None
    header = [re.sub(r"\s*[↑↓]$", "", h) for h in rows[0]]
    return {r[0]: {h: _cell(c) for h, c in zip(header, r, strict=False)} for r in rows[2:]}


def baselines_path(budget: float) -> Path:
    return BASELINES_DIR / f"automl-{budget:g}s.json"


def references(folder: Path, budget: float) -> dict[str, dict[str, Any]]:
    """What the other systems scored on each table at this budget: anchors.md's row
    ({column: value}, as parse_anchors reads it) and, under "runs", the records of
    bench/baselines ({system: record}: runs of `bench.automl --baselines` on this machine
    kind, for the budgets and systems anchors.md lacks)."""
    out = parse_anchors(folder / "anchors.md", budget) or {}
    for table, runs in read_json(baselines_path(budget)).items():
        out.setdefault(table, {})["runs"] = runs
    return out


# -- output -----------------------------------------------------------------------------------

def fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def results_path(stem: str, suffix: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return RESULTS_DIR / f"{stem}{suffix}"


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def write_json(stem: str, data: Any) -> Path:
    path = results_path(stem, ".json")
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def write_results(stem: str, markdown: str, data: Any) -> tuple[Path, Path]:
    md = results_path(stem, ".md")
    md.write_text(markdown + "\n")
    return md, write_json(stem, data)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def base_parser(description: str, budget: float = 60.0) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--budget", type=float, default=budget,
                        help=f"tabpilot's time_limit in seconds (default {budget:g})")
    parser.add_argument("--datasets", default=str(DEFAULT_DATASETS),
                        help="the datasets folder (default ../shared/datasets from the repo root)")
    parser.add_argument("--workspace", default=str(DEFAULT_WORKSPACE),
                        help="tabpilot workspace for the jobs (default bench/results/workspace)")
    return parser


def error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
