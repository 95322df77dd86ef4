"""Parquet datasets larger than the job's memory budget: a stratified sample, said in describe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tabpilot import AutoML
from tabpilot.data import sampling
from tabpilot.errors import ConfigError, TargetError
from tabpilot.tasks import ProblemType


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    """A binary target with a 10% minority class, a rare third-party column, numbers."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    df = pd.DataFrame({"row": np.arange(n), "x": x, "z": rng.normal(size=n),
                       "shop": rng.choice(["north", "south", "east"], n)})
    df["label"] = np.where(x + rng.normal(0, 0.3, n) > 1.28, "yes", "no")
    df.loc[rng.random(n) < 0.02, "label"] = None  # rows a job drops: never drawn
    return df


def _write(df: pd.DataFrame, folder: Path, parts: int = 3) -> Path:
    folder.mkdir(parents=True)
    for i, part in enumerate(np.array_split(np.arange(len(df)), parts)):
        # small row groups: the sample is read batch by batch across files and groups
        pq.write_table(pa.Table.from_pandas(df.iloc[part], preserve_index=False),
                       folder / f"part-{i:03d}.parquet", row_group_size=500)
    (folder / "_SUCCESS").write_text("")  # what Spark leaves: not a data file
    return folder


def _budget_for(rows: int, df: pd.DataFrame) -> tuple[int, str]:
    """A budget that holds `rows` of `df`'s rows at a job's peak."""
    per_row = df.head(sampling.SIZE_ROWS).memory_usage(deep=True, index=False).sum() / \
        min(len(df), sampling.SIZE_ROWS)
    return int(rows * per_row * sampling.JOB_MEMORY_FACTOR), "a test's budget"


def test_the_budget_comes_from_the_environment_or_the_available_memory() -> None:
    assert sampling.memory_budget({"TABPILOT_MEMORY_BUDGET": "512MB"}) == (
        512 * 2**20, "$TABPILOT_MEMORY_BUDGET=512MB")
    assert sampling.memory_budget({"TABPILOT_MEMORY_BUDGET": "2gb"})[0] == 2 * 2**30
    assert sampling.memory_budget({"TABPILOT_MEMORY_BUDGET": "1048576"})[0] == 2**20
    quarter, why = sampling.memory_budget({"TABPILOT_MEMORY_BUDGET": "0.25"})
    half, default_why = sampling.memory_budget({})
    assert 0 < quarter < half and "25% of the" in why and "50% of the" in default_why
    for bad in ["lots", "12 parsecs", "0", "-1GB"]:
        with pytest.raises(ConfigError, match="TABPILOT_MEMORY_BUDGET"):
            sampling.memory_budget({"TABPILOT_MEMORY_BUDGET": bad})


def test_each_class_keeps_its_share_and_a_rare_class_its_minimum() -> None:
    y = pd.Series(["a"] * 9000 + ["b"] * 990 + ["c"] * 10 + [None] * 50, name="y")
    rows, by = sampling.stratified_rows(y, 1000, None, seed=1)
    drawn = y.iloc[rows].value_counts()
    assert len(rows) == 1000 and np.all(np.diff(rows) > 0) and "classes" in by
    # each class: min(its rows, MIN_PER_CLASS), plus its share of the rest (largest remainder)
    low = sampling.MIN_PER_CLASS
    rest = 1000 - 3 * low
    assert low <= drawn["c"] <= low + 1 and y.iloc[rows].notna().all()
    assert abs(drawn["b"] - (low + rest * (990 - low) / (10_000 - 3 * low))) < 1
    assert abs(drawn["a"] - (low + rest * (9000 - low) / (10_000 - 3 * low))) < 1
    again, _ = sampling.stratified_rows(y, 1000, None, seed=1)
    assert np.array_equal(rows, again)  # the same seed, the same sample


def test_a_numeric_target_keeps_its_distribution_by_quantile_bins() -> None:
    rng = np.random.default_rng(0)
    y = pd.Series(rng.lognormal(0, 1, 20_000), name="price")
    rows, by = sampling.stratified_rows(y, 2000, ProblemType.REGRESSION, seed=0)
    assert len(rows) == 2000 and "10 quantile bins" in by
    deciles = np.quantile(y, np.linspace(0.1, 0.9, 9))
    per_bin = np.bincount(np.searchsorted(deciles, y.iloc[rows], side="right"), minlength=10)
    assert per_bin.min() >= 199 and per_bin.max() <= 201


def test_a_dataset_over_the_budget_is_read_as_its_rows_at_the_drawn_positions(
        tmp_path: Path) -> None:
    df = _table(6000)
    folder = _write(df, tmp_path / "ds")
    budget = _budget_for(2000, df)
    got, sample = sampling.read_dataset(folder, "label", seed=0, budget=budget)
    assert sample.sampled and sample.dataset_rows == 6000
    assert 1900 <= sample.rows == len(got) <= 2000
    # real rows, in the dataset's order, none without a target, classes in their shares
    expected = df.set_index("row").loc[got["row"]].reset_index()
    pd.testing.assert_frame_equal(got, expected[got.columns], check_dtype=False)
    assert got["row"].is_monotonic_increasing and got["label"].notna().all()
    share = (df["label"] == "yes").sum() / df["label"].notna().sum()
    assert abs((got["label"] == "yes").mean() - share) < 0.002
    assert "6,000 rows" in sample.message() and "a test's budget" in sample.message()
    # a dataset that fits is read whole, and says nothing
    whole, fits = sampling.read_dataset(folder, "label", budget=_budget_for(10_000, df))
    assert len(whole) == 6000 and not fits.sampled
    with pytest.raises(TargetError, match="did you mean 'label'"):
        sampling.read_dataset(folder, "labels", budget=budget)
    with pytest.raises(ConfigError, match="holds only"):
        sampling.read_dataset(folder, "label", budget=_budget_for(100, df))


def test_a_job_on_a_dataset_over_its_budget_searches_and_refits_on_samples_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    df = _table(6000, seed=2).drop(columns="row")
    folder = _write(df, tmp_path / "ds")
    budget, _ = _budget_for(2500, df)
    monkeypatch.setenv("TABPILOT_MEMORY_BUDGET", str(budget))
    lines: list[str] = []
    from tabpilot.console import ProgressLog

    # a holdout (as on a sample of 10,000 rows or more), so the best is refit on the whole
    job = AutoML(target="label", time_limit=60, max_candidates=1, algorithms=["lightgbm"],
                 n_workers=1, workspace=tmp_path / "ws", name="sampled", stacking="off",
                 folds=1, on_progress=ProgressLog(lines.append))
    job.fit(str(folder))
    desc = job.describe()
    assert desc["AutoMLJobStatus"] == "Completed"
    sample = desc["TrainingSample"]
    assert sample["DatasetRows"] == 6000 and 2000 < sample["RefitRows"] <= 2500
    assert sample["SearchRows"] == sample["RefitRows"] - int(np.ceil(sample["RefitRows"] * 0.2))
    assert sample["MemoryBudgetBytes"] == budget and "classes of 'label'" in sample["Reason"]
    assert f"{sample['SearchRows']:,} of them" in sample["Reason"]
    said = [line for line in lines if line.startswith("sample: the dataset has 6,000 rows")]
    assert said and f"whole sample, {sample['RefitRows']:,} rows" in said[0], lines
    holdout = sample["RefitRows"] - sample["SearchRows"]
    assert (f"validation: a holdout of {holdout:,} rows, 20.0% of {sample['RefitRows']:,} "
            "(folds given; its size AutoGluon's rule); override with --folds N or "
            "--validation-fraction F") in lines
    best = job.store.get_candidate("sampled", desc["BestCandidate"]["CandidateName"])
    assert best.trained_on == "train+holdout"  # the best refit on the whole sample
    assert len(job.best_model().predict(df.drop(columns="label").head(5))) == 5


def test_a_large_frame_s_size_is_measured_on_a_sample_of_its_text() -> None:
    from tabpilot.jobs.creating import frame_bytes

    rng = np.random.default_rng(4)
    n = 300_000
    df = pd.DataFrame({"x": rng.normal(size=n).astype(np.float32),
                       "city": rng.choice(["Oslo", "Lisbon", "Ulaanbaatar", None], n),
                       "note": [f"note {i % 977}" for i in range(n)]})
    exact = int(df.memory_usage(deep=True, index=False).sum())
    assert abs(frame_bytes(df) - exact) / exact < 0.01
    assert frame_bytes(df.head(1000)) == int(df.head(1000).memory_usage(deep=True,
                                                                        index=False).sum())
