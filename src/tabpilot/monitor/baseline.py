"""A baseline folder: statistics.json, constraints.json and baseline_sample.parquet.

The sample keeps up to SAMPLE_ROWS rows (drawn once, seeded, the same rows for every
column) of each numeric feature's values. Model Monitor compares a window with the
baseline's KLL sketch, an approximation; keeping the values instead makes the drift
distance exact (it equals `scipy.stats.ks_2samp(sample, window).statistic`) for a few
hundred kilobytes of Parquet.

A job's baseline is built from its training data without the target column, as the
endpoint that serves the job's model receives it, in `<job dir>/monitoring/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot import names
from tabpilot.errors import ConfigError, DataError, NotFoundError
from tabpilot.monitor import CONSTRAINTS, JOB_FOLDER, SAMPLE, STATISTICS
from tabpilot.monitor.constraints import suggest
from tabpilot.monitor.statistics import NUMERIC, dataset_statistics, numbers

SAMPLE_ROWS = 10_000


@dataclass
class Baseline:
    folder: Path
    statistics: dict[str, Any]
    constraints: dict[str, Any]
    sample: pd.DataFrame  # numeric features' kept values (NaN where absent)

    def values(self, feature: str) -> np.ndarray:
        """The feature's kept values; without a kept sample (a baseline Model Monitor
        wrote), the values of its KLL sketch, each compactor level h weighing 2^h: the
        distance is then an approximation."""
        if feature in self.sample.columns:
            return self.sample[feature].dropna().to_numpy(dtype=float)
        found = next((f for f in self.statistics.get("features", [])
                      if str(f.get("name")) == feature), {})
        sketch = (((found.get("numerical_statistics") or {}).get("distribution") or {})
                  .get("kll") or {}).get("sketch") or {}
        levels = [np.asarray(level, dtype=float) for level in sketch.get("data") or []]
        if not any(len(level) for level in levels):
            return np.empty(0)
        values = np.sort(np.concatenate([np.repeat(level, 2 ** min(h, 10))
                                         for h, level in enumerate(levels)]))
        if len(values) > SAMPLE_ROWS:  # evenly spaced order statistics, as many as a sample
            values = values[np.linspace(0, len(values) - 1, SAMPLE_ROWS).round().astype(int)]
        return values


def write_baseline(df: pd.DataFrame, folder: Path, *, seed: int = 0,
                   sample_rows: int = SAMPLE_ROWS, **config: Any) -> Baseline:
    """Describe `df` and write the baseline folder (files replaced whole); `config` goes to
    `constraints.monitoring_config` (method, threshold, categorical_threshold)."""
    if df.empty or len(df.columns) == 0:
        raise DataError("the baseline table has no rows or no columns; give the training data")
    statistics = dataset_statistics(df)
    constraints = suggest(statistics, **config)
    numeric = [f["name"] for f in statistics["features"] if f["inferred_type"] in NUMERIC]
    rows = df if len(df) <= sample_rows else df.sample(sample_rows, random_state=seed)
    sample = pd.DataFrame({name: numbers(rows[name]).to_numpy() for name in numeric})
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _replace(folder / STATISTICS, lambda p: p.write_text(json.dumps(statistics, indent=1)))
        _replace(folder / CONSTRAINTS, lambda p: p.write_text(json.dumps(constraints, indent=1)))
        _replace(folder / SAMPLE, lambda p: sample.to_parquet(p, index=False))
    except OSError as exc:
        raise DataError(f"cannot write the baseline to {folder}: {exc.strerror or exc}; "
                        "give another folder") from None
    return Baseline(folder, statistics, constraints, sample)


def _replace(path: Path, write) -> None:
    part = path.with_name(path.name + ".part")
    write(part)
    part.replace(path)


def load_baseline(folder: Path) -> Baseline:
    fix = "write one with `tabpilot monitor baseline JOB|TABLE -o DIR`"
    if not folder.is_dir():
        raise NotFoundError(f"baseline folder {folder} does not exist; {fix}")
    loaded = []
    for name in (STATISTICS, CONSTRAINTS):
        path = folder / name
        if not path.is_file():
            raise NotFoundError(f"baseline folder {folder} has no {name}; {fix}")
        try:
            loaded.append(json.loads(path.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{path} is not valid JSON ({exc}); {fix}") from None
    statistics, constraints = loaded
    if not isinstance(statistics.get("features"), list) \
            or not isinstance(constraints.get("features"), list):
        raise DataError(f"{folder}'s statistics.json or constraints.json has no features "
                        f"list (not Model Monitor's schema); {fix}")
    sample = pd.read_parquet(folder / SAMPLE) if (folder / SAMPLE).is_file() else pd.DataFrame()
    return Baseline(folder, statistics, constraints, sample)


def job_folder(job: str, workspace: Path | None) -> Path:
    from tabpilot.config import workspace_path
    from tabpilot.store import Store

    names.check(job, "job")
    row = Store.for_workspace(workspace_path(workspace), create=False).get_job(job)
    if not row.job_dir or not (Path(row.job_dir) / "job.json").is_file():
        raise NotFoundError(f"job {job!r} has no job.json in its folder {row.job_dir}; "
                            "it may have failed before reading its data")
    return Path(row.job_dir)


def job_baseline(job_dir: Path, folder: Path | None = None, **config: Any) -> Baseline:
    """The baseline of a job's training data, target left out (default folder:
    `<job dir>/monitoring/`)."""
    from tabpilot.data.read import read_table
    from tabpilot.reports.datafiles import locate

    info = json.loads((job_dir / "job.json").read_text())
    target = info["request"]["target"]
    source = locate(job_dir, info["data"], "input",
                    fix="give the table itself: `tabpilot monitor baseline TABLE --target "
                        f"{target} -o DIR`")
    df = read_table(source, copy=False)
    return write_baseline(df.drop(columns=[target], errors="ignore"),
                          folder or job_dir / JOB_FOLDER, **config)


def is_table(source: str) -> bool:
    """A table's location (a file, or a URI) rather than a job's or an endpoint's name."""
    return "://" in source or Path(source).is_file()


def make_baseline(source: str, output: Path | None, workspace: Path | None,
                  target: str | None = None, **config: Any) -> Baseline:
    """`tabpilot monitor baseline`: a table's baseline in `output` (`target` left out), or
    a job's (default folder `<job dir>/monitoring`)."""
    if is_table(source):
        from tabpilot.data.read import read_table

        if output is None:
            raise ConfigError("give the baseline folder of a table with -o DIR")
        df = read_table(source, copy=False)
        if target is not None and target not in df.columns:
            raise DataError(f"--target {target!r} is not a column of {source}")
        return write_baseline(df.drop(columns=[target] if target else []), output, **config)
    if not names.is_valid(source, "job") or Path(source).exists():
        raise DataError(f"{source} is neither a table file nor a job name; give the path "
                        "of a CSV, Parquet or JSON-lines file, or a job of the workspace")
    return job_baseline(job_folder(source, workspace), output, **config)


def resolve_baseline(given: str, workspace: Path | None) -> Baseline:
    """A baseline folder, or a job's (built from its training data on first use)."""
    path = Path(given)
    if path.is_dir() or not names.is_valid(given, "job"):
        return load_baseline(path)
    job_dir = job_folder(given, workspace)
    if (job_dir / JOB_FOLDER / STATISTICS).is_file():
        return load_baseline(job_dir / JOB_FOLDER)
    return job_baseline(job_dir)
