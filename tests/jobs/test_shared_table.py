"""A job reads the caller's DataFrame without copying it, and never writes into it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tabpilot import AutoML


def test_fit_leaves_the_callers_frame_exactly_as_it_was(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 400
    df = pd.DataFrame({
        "amount": rng.gamma(2.0, 50.0, n),
        "plan": rng.choice([" basic", "pro", None], n),
        "tier": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        "count": rng.integers(0, 9, n),
    })
    df.loc[rng.random(n) < 0.1, "amount"] = np.nan
    df["y"] = df["amount"].fillna(50) / 10 + (df["plan"] == "pro") * 5 + rng.normal(size=n)
    df.loc[:4, "y"] = np.nan  # rows the job drops
    before = df.copy(deep=True)
    job = AutoML(target="y", time_limit=15, max_candidates=2, algorithms=["lightgbm", "linear"],
                 n_workers=2, workspace=tmp_path, name="shared")
    job.fit(df)
    assert job.describe()["AutoMLJobStatus"] == "Completed"
    pd.testing.assert_frame_equal(df, before)
    assert len(job.best_model().predict(df.head(10))) == 10
