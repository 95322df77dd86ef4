"""Parquet datasets, read whole when the job can hold them, else as a stratified sample.

A job holds its table in memory, and at its peak (the frame, the trials' encodings, the
models) about JOB_MEMORY_FACTOR times the frame's in-memory size (`bench/scale.py`
measures it). A Parquet dataset (a folder of files, or one file) whose frame would not
fit the job's memory budget that way is not refused: the job trains on the largest
sample that fits, drawn without ever loading the whole dataset:

1. the row count from the files' metadata, the bytes per row from the first rows read
   as pandas holds them;
2. the target column alone (one column of the dataset) decides the sample: every class
   (classification) or every tenth of the target's range by quantile (regression) keeps
   its share of the rows, a class at least MIN_PER_CLASS of them; rows without a target
   are never drawn (a job drops them anyway);
3. the files are read again batch by batch, keeping only the drawn rows.

The search then runs on the sample's training part and the best candidate is refit on the
whole sample (the job's holdout refit): `describe` says how many rows each used, of how
many, and why (`TrainingSample`).

The memory budget: `$TABPILOT_MEMORY_BUDGET` (bytes, or "8GB", "512MB", or a fraction of
the memory available now, "0.5"), else DEFAULT_FRACTION of the memory available when the
job starts.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.dataset as pads

from tabpilot.errors import ConfigError, DataError, shown
from tabpilot.tasks import ProblemType, infer_with_reason

log = logging.getLogger("tabpilot.data.sampling")

MEMORY_ENV = "TABPILOT_MEMORY_BUDGET"
DEFAULT_FRACTION = 0.5  # of the memory available when the job starts
JOB_MEMORY_FACTOR = 4.0  # a job's peak, every process, over its frame (bench.scale: <= 4x)
SIZE_ROWS = 10_000  # rows read to learn the bytes per row
MIN_PER_CLASS = 5  # a rare class keeps this many rows (all of them, if it has fewer)
REGRESSION_BINS = 10  # quantile bins of a numeric target, each keeping its share
MIN_SAMPLE_ROWS = 1_000  # a budget that fits fewer rows is refused, not trained on
PARQUET_SUFFIXES = (".parquet", ".pq")

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "m": 2**20, "mb": 2**20, "g": 2**30,
          "gb": 2**30, "t": 2**40, "tb": 2**40, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


@dataclass
class Sample:
    """How much of a dataset a job read, and why."""

    dataset_rows: int  # rows of the dataset (with a target or not)
    rows: int  # rows read: the refit sample
    bytes_per_row: float  # as pandas holds them
    budget_bytes: int
    budget_source: str  # how the budget was decided, in words
    stratified_by: str | None  # None: every row was read
    search_rows: int | None = None  # the search's rows (the sample's training part)

    @property
    def sampled(self) -> bool:
        return self.stratified_by is not None

    def message(self) -> str:
        """One line for `describe` and the job's progress output."""
        need = self.dataset_rows * self.bytes_per_row * JOB_MEMORY_FACTOR
        head = (f"the dataset has {self.dataset_rows:,} rows (~{_size(need)} at its peak in "
                f"a job: {JOB_MEMORY_FACTOR:g}x its {_size(need / JOB_MEMORY_FACTOR)} in "
                f"memory), over the job's memory budget of {_size(self.budget_bytes)} "
                f"({self.budget_source})")
        if self.search_rows == self.rows:  # k-fold on a small sample: its bag is the model
            body = (f"trained on the largest sample that fits, {self.rows:,} rows stratified "
                    f"by {self.stratified_by}")
        else:
            search = "its training part" if self.search_rows is None else \
                f"{self.search_rows:,} of them (its training part)"
            body = (f"searched on a sample stratified by {self.stratified_by}, {search}, and "
                    f"the best refit on the whole sample, {self.rows:,} rows: the largest "
                    "that fits")
        return f"{head}: {body}; raise ${MEMORY_ENV} to use more"

    def describe(self) -> dict[str, Any]:
        """As DescribeAutoMLJobV2's TrainingSample (tabpilot's own key)."""
        return {"DatasetRows": self.dataset_rows, "SearchRows": self.search_rows,
                "RefitRows": self.rows, "StratifiedBy": self.stratified_by,
                "MemoryBudgetBytes": self.budget_bytes, "MemoryBudgetSource": self.budget_source,
                "BytesPerRow": round(self.bytes_per_row, 1), "Reason": self.message()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def memory_budget(env: dict[str, str] | None = None) -> tuple[int, str]:
    """The bytes a job may use and how that was decided (for the job's message)."""
    value = (os.environ if env is None else env).get(MEMORY_ENV, "").strip()
    available = psutil.virtual_memory().available
    if not value:
        return int(available * DEFAULT_FRACTION), (
            f"{DEFAULT_FRACTION:.0%} of the {_size(available)} available; ${MEMORY_ENV} sets it")
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)", value)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ConfigError(f"${MEMORY_ENV} is {value!r}; give bytes (\"8GB\", \"512MB\") or a "
                          "fraction of the available memory (\"0.5\")")
    number = float(match.group(1))
    if not unit and number <= 1:
        if number <= 0:
            raise ConfigError(f"${MEMORY_ENV} is {value!r}; a fraction must be above 0")
        return int(available * number), (f"{number:.0%} of the {_size(available)} available, "
                                         f"${MEMORY_ENV}")
    return int(number * _UNITS[unit]), f"${MEMORY_ENV}={value}"


def is_dataset(source: Any) -> bool:
    """A local folder holding Parquet files, or a single Parquet file: what this module
    reads (other tables, and DataFrames, go through `data/read.py`)."""
    if not isinstance(source, str | Path) or "://" in str(source):
        return False
    path = Path(source).expanduser()
    if path.is_file():
        return path.suffix.lower() in PARQUET_SUFFIXES
    return path.is_dir() and any(_files(path))


def _files(folder: Path) -> list[str]:
    """The folder's Parquet files, sorted (the sample is drawn in this order), skipping
    hidden and underscore files (_SUCCESS, _metadata) as Spark and pyarrow do."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        found += [os.path.join(root, n) for n in names
                  if n.lower().endswith(PARQUET_SUFFIXES) and not n.startswith((".", "_"))]
    return sorted(found)


def _dataset(source: str | Path) -> pads.Dataset:
    path = Path(source).expanduser()
    files = [str(path)] if path.is_file() else _files(path)
    try:
        return pads.dataset(files, format="parquet")
    except (pa.ArrowInvalid, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(f"{source} could not be read as a Parquet dataset: {first}") from None


def read_dataset(source: str | Path, target: str, problem_type: ProblemType | None = None,
                 seed: int = 0, budget: tuple[int, str] | None = None
                 ) -> tuple[pd.DataFrame, Sample]:
    """The dataset as a DataFrame: whole when the job can hold it, else the largest
    stratified sample that fits `budget` (default `memory_budget()`)."""
    from tabpilot.data.prepare import check_target_column
    from tabpilot.data.read import _check_unique_names

    dataset = _dataset(source)
    _check_unique_names(str(source), dataset.schema.names)
    n = dataset.count_rows()  # from the files' footers
    if n == 0:
        raise DataError(f"{source} has no data rows")
    head = _frame(str(source), dataset.head(min(n, SIZE_ROWS)))
    check_target_column(head, target)
    per_row = float(head.memory_usage(deep=True, index=False).sum()) / len(head)
    budget_bytes, why = budget or memory_budget()
    fits = int(budget_bytes / (per_row * JOB_MEMORY_FACTOR))
    if n <= fits:
        df = _frame(str(source), dataset.to_table())
        log.info("read %s: %d rows x %d columns", source, len(df), len(df.columns))
        return df, Sample(n, n, per_row, budget_bytes, why, None)
    if fits < MIN_SAMPLE_ROWS:
        raise ConfigError(
            f"the job's memory budget of {_size(budget_bytes)} ({why}) holds only {fits:,} "
            f"rows of {source} ({per_row:.0f} bytes a row, {JOB_MEMORY_FACTOR:g}x at a job's "
            f"peak); at least {MIN_SAMPLE_ROWS:,} are needed: raise ${MEMORY_ENV}")
    y = dataset.to_table(columns=[target]).column(0).to_pandas().rename(target)
    rows, by = stratified_rows(y, fits, problem_type, seed)
    del y
    df = _frame(str(source), _take(dataset, rows))
    sample = Sample(n, len(df), per_row, budget_bytes, why, by)
    if sample.sampled:
        log.warning(sample.message())
    return df, sample


def _frame(source: str, table: pa.Table) -> pd.DataFrame:
    from tabpilot.data.read import _flatten

    return _flatten(source, table).to_pandas()


def stratified_rows(y: pd.Series, size: int, problem_type: ProblemType | None, seed: int
                    ) -> tuple[np.ndarray, str | None]:
    """`size` row positions (ascending) of the rows with a target, each stratum keeping its
    share (largest remainders), and what the strata were (None: every row with a target
    fits, and is kept)."""
    present = np.flatnonzero(y.notna().to_numpy())
    values = y.iloc[present]
    if len(present) <= size:
        return present, None
    kind = problem_type or infer_with_reason(values)[0]
    if kind is ProblemType.REGRESSION:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        edges = np.unique(np.nanquantile(numbers, np.linspace(0, 1, REGRESSION_BINS + 1)))
        strata = np.searchsorted(edges[1:-1], numbers, side="right")
        by = f"{len(edges) - 1} quantile bins of {shown(y.name)}"
    else:
        strata = pd.factorize(values, sort=True)[0]
        by = f"the classes of {shown(y.name)}"
    counts = np.bincount(strata)
    quota = _quotas(counts, size)
    rng = np.random.default_rng(seed)
    order = np.argsort(strata, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    picked = [rng.choice(order[s: s + c], size=q, replace=False)
              for s, c, q in zip(starts, counts, quota, strict=True) if q]
    return np.sort(present[np.concatenate(picked)]), by


def _quotas(counts: np.ndarray, size: int) -> np.ndarray:
    """Rows per stratum summing to `size`: proportional (largest remainders), every
    stratum at least min(its rows, MIN_PER_CLASS)."""
    floor = np.minimum(counts, MIN_PER_CLASS)
    left = size - int(floor.sum())
    if left <= 0:
        return floor
    spare = counts - floor
    exact = spare * (left / spare.sum())
    quota = np.floor(exact).astype(np.int64)
    short = left - int(quota.sum())
    if short:
        quota[np.argsort(-(exact - quota), kind="stable")[:short]] += 1
    return floor + np.minimum(quota, spare)


def _take(dataset: pads.Dataset, rows: np.ndarray) -> pa.Table:
    """The rows at positions `rows` (ascending), read one batch at a time."""
    kept: list[pa.RecordBatch] = []
    offset = 0
    for fragment in dataset.get_fragments():
        for batch in fragment.to_batches(schema=dataset.schema, use_threads=False):
            end = offset + batch.num_rows
            a, b = np.searchsorted(rows, [offset, end])
            if b > a:
                kept.append(batch.take(pa.array(rows[a:b] - offset)))
            offset = end
    return pa.Table.from_batches(kept, schema=dataset.schema)
