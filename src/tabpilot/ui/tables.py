"""What the new-job wizard shows about a table before any job exists: the tables it may
pick under the server's allowed data roots, a preview of the first rows with each
column's inferred kind, and the problem type and metric a target suggests (with the
reason, in the words `tasks.infer_with_reason` uses for a real job).

Every location a user gives passes `Locations.table_files` (the one resolver, confined to
the allowed roots) before a byte is read; the table is read by `data/read.py`, the reader
every job uses, so the preview fails exactly where the job would, with the same line.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot.api.locations import INTERNAL, INTERNAL_PREFIXES, TABLE_SUFFIXES, Locations
from tabpilot.data.read import read_table
from tabpilot.data.schema import infer_schema
from tabpilot.errors import TargetError, shown
from tabpilot.metrics import DEFAULT_METRIC, STANDARD_METRICS
from tabpilot.tasks import ProblemType, infer_with_reason

PREVIEW_ROWS = 10
LISTED_FILES = 200  # per root: a data lake root lists its first files, and says so
LIST_DEPTH = 4
FIELD = "data"
_CACHE_SIZE = 4  # tables kept read between the preview, the target choice and the code


@dataclass
class Table:
    """A table as the wizard shows it."""

    location: str  # as the user gave it (a path under a root, or an s3:// URI)
    rows: int
    bytes: int | None
    kinds: dict[str, str]
    head: list[list[str]]
    frame: pd.DataFrame

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def summary(self) -> dict[str, Any]:
        return {"location": self.location, "rows": self.rows, "bytes": self.bytes,
                "columns": [{"name": c, "kind": self.kinds.get(c, "")} for c in self.columns],
                "head": self.head}


class TableCache:
    """The last few tables read, by location and file stamp: choosing a target re-reads
    nothing, and a file replaced on disk is read again."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self.size = size
        self._tables: OrderedDict[tuple[str, Any], Table] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, locations: Locations, location: str) -> Table:
        files = locations.table_files(location, FIELD)
        stamp = tuple(_stamp(f) for f in files)
        key = (location, stamp)
        with self._lock:
            if key in self._tables:
                self._tables.move_to_end(key)
                return self._tables[key]
        table = read(locations, location, files)
        with self._lock:
            self._tables[key] = table
            while len(self._tables) > self.size:
                self._tables.popitem(last=False)
        return table


def _stamp(path: str) -> tuple[float, int] | None:
    p = Path(path)
    if "://" in path or not p.is_file():
        return None
    st = p.stat()
    return st.st_mtime, st.st_size


def read(locations: Locations, location: str, files: list[str] | None = None) -> Table:
    """The table at `location` (inside the allowed roots), with its column kinds."""
    files = files or locations.table_files(location, FIELD)
    source = locations.read(location, field=FIELD)
    df = read_table(source, copy=False)
    size = sum(Path(f).stat().st_size for f in files if "://" not in f) if files else None
    kinds = infer_schema(df).to_dict()
    head = [[_cell(v) for v in row] for row in df.head(PREVIEW_ROWS).itertuples(index=False)]
    return Table(location, len(df), size, kinds, head, df)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value is pd.NaT:
        return ""
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def suggest(table: Table, target: str) -> dict[str, Any]:
    """The problem type and metric a job on `target` would resolve, and why."""
    if target not in table.frame.columns:
        raise TargetError(f"the table has no column {shown(target)}; choose the target from "
                          f"its columns: {', '.join(table.columns[:8])}"
                          + (" ..." if len(table.columns) > 8 else ""))
    values = table.frame[target].dropna()
    if values.empty:
        raise TargetError(f"every value of the target {shown(target)} is missing; choose "
                          "another column")
    problem, reason = infer_with_reason(values)
    metric = DEFAULT_METRIC[problem]
    missing = int(table.frame[target].isna().sum())
    out: dict[str, Any] = {
        "target": target, "problem_type": problem.value, "reason": reason,
        "metric": metric, "metrics": STANDARD_METRICS[problem],
        "metric_reason": f"{metric} is Autopilot's default objective for "
                         f"{problem.autopilot_name}",
        "missing_target_rows": missing,
    }
    if problem.is_classification:
        counts = values.astype(str).value_counts()
        out["classes"] = [{"label": k, "rows": int(v)} for k, v in counts.head(20).items()]
    return out


def problem_metrics() -> dict[str, list[str]]:
    return {p.value: STANDARD_METRICS[p] for p in ProblemType}


# -- picking a file under the allowed roots ---------------------------------------------
def listing(locations: Locations) -> list[dict[str, Any]]:
    """Each local allowed root and the table files under it (depth and count bounded),
    leaving out the workspace's own state (jobs, models, logs, the database)."""
    roots = locations.roots.local or []
    out = []
    for root in roots:
        files, more = _tables_under(locations, root)
        out.append({"root": str(root), "files": files, "more": more})
    return out


def _tables_under(locations: Locations, root: Path) -> tuple[list[dict[str, Any]], bool]:
    found: list[dict[str, Any]] = []
    if not root.is_dir():
        return found, False
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or entry.name.startswith("_"):
                continue
            if folder == locations.workspace and (entry.name in INTERNAL
                                                  or entry.name.startswith(INTERNAL_PREFIXES)):
                continue
            if entry.is_dir() and depth + 1 < LIST_DEPTH:
                stack.append((entry, depth + 1))
            elif entry.is_file() and entry.name.lower().endswith(TABLE_SUFFIXES) \
                    and locations.roots.contains(entry):
                found.append({"path": str(entry), "name": str(entry.relative_to(root)),
                              "bytes": entry.stat().st_size})
                if len(found) >= LISTED_FILES:
                    return sorted(found, key=lambda f: f["name"]), True
    return sorted(found, key=lambda f: f["name"]), False


def human_bytes(n: int | None) -> str:
    if n is None:
        return "unknown size"
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"

