"""The exploration report: the target per category and per numeric bin of the most
predictive columns (data/target_groups.py, drawn by reports/charts.py in
DataExploration.ipynb) and readable statistics for categorical columns.

The notebook's cells are run here in this process with a recording `display` (the kernel
run is tests/data/test_profile.py's): what they show is checked, not only that they run."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from tabpilot.data.profile import profile
from tabpilot.data.schema import infer_schema
from tabpilot.data.target_groups import target_groups
from tabpilot.reports import charts, notebooks
from tabpilot.tasks import ProblemType


def _churn(n: int = 900, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.5, 0.3, 0.2])
    tenure = rng.integers(0, 73, n)
    rate = np.select([contract == "Month-to-month", contract == "One year"], [0.45, 0.12], 0.03)
    churn = (rng.random(n) < rate * (1.3 - tenure / 72)).astype(int)
    X = pd.DataFrame({"Contract": contract, "tenure": tenure.astype(float),
                      "noise": rng.normal(size=n)})
    X.loc[::50, "Contract"] = None
    return X, churn


@pytest.fixture(scope="module")
def churn_report():
    X, y = _churn()
    return X, y, profile(X, y, infer_schema(X), ProblemType.BINARY, ["No", "Yes"])


def test_churn_rate_by_contract_type_is_the_rate_in_the_data(churn_report) -> None:
    X, y, report = churn_report
    by = report["target_by_column"]
    assert by["overall"] == {"Yes": pytest.approx(y.mean())}
    contract = next(c for c in by["columns"] if c["column"] == "Contract")
    assert contract["kind"] == "categorical"
    expected = pd.Series(y).groupby(X["Contract"].fillna("(missing)")).agg(["mean", "size"])
    got = {g["group"]: g for g in contract["groups"]}
    assert set(got) == set(expected.index)
    for name, row in expected.iterrows():
        assert got[name]["rows"] == row["size"]
        assert got[name]["shares"]["Yes"] == pytest.approx(row["mean"])
    # most frequent first, missing last
    assert [g["group"] for g in contract["groups"]][0] == "Month-to-month"
    assert contract["groups"][-1]["group"] == "(missing)"


def test_numeric_bins_cover_every_row_and_say_their_range(churn_report) -> None:
    X, y, report = churn_report
    tenure = next(c for c in report["target_by_column"]["columns"] if c["column"] == "tenure")
    assert sum(g["rows"] for g in tenure["groups"]) == len(X)
    assert tenure["groups"][0]["group"].startswith("0 to ")
    assert tenure["groups"][-1]["group"].endswith(" to 72")
    weighted = sum(g["rows"] * g["shares"]["Yes"] for g in tenure["groups"]) / len(X)
    assert weighted == pytest.approx(y.mean())


def test_regression_and_multiclass_groups() -> None:
    X, y = _churn(600, seed=1)
    value = y * 10.0 + X["tenure"].to_numpy()
    reg = target_groups(X, value, infer_schema(X), ProblemType.REGRESSION, None,
                        {"Contract": 0.5, "tenure": 0.4})
    contract = reg["columns"][0]
    for g in contract["groups"]:
        rows = value[(X["Contract"].fillna("(missing)") == g["group"]).to_numpy()]
        assert g["mean"] == pytest.approx(rows.mean()) and g["q25"] <= g["median"] <= g["q75"]
    labels = np.asarray(X["Contract"].fillna("x").map({"Month-to-month": 0, "One year": 1,
                                                       "Two year": 2, "x": 0}))
    multi = target_groups(X, labels, infer_schema(X), ProblemType.MULTICLASS,
                          ["m", "o", "t"], {"tenure": 0.3})
    for g in multi["columns"][0]["groups"]:
        assert sum(g["shares"].values()) == pytest.approx(1.0)


def _run(cell: str, report: dict) -> list:
    shown: list = []
    exec(cell.format(job="j", recorded="/"), {"report": report, "pd": pd, "charts": charts,
                                              "display": shown.append, "print": lambda *a: None})
    return shown


def test_the_notebook_draws_the_target_by_column(churn_report) -> None:
    _, _, report = churn_report
    shown = _run(notebooks._TARGET_BY_COLUMN, report)
    assert all(isinstance(f, matplotlib.figure.Figure) for f in shown)
    assert len(shown) == len(report["target_by_column"]["columns"])
    first = report["target_by_column"]["columns"][0]
    widths = [p.get_width() for p in shown[0].axes[0].patches]
    assert widths == pytest.approx([g["shares"]["Yes"] for g in first["groups"]])
    ticks = [t.get_text() for t in shown[0].axes[0].get_yticklabels()]
    assert ticks[0] == f"{first['groups'][0]['group']}  (n={first['groups'][0]['rows']})"
    assert _run(notebooks._TARGET_BY_COLUMN, {"problem_type": "binary"}) == []  # older file


def test_categorical_statistics_are_readable_and_free_of_nan(churn_report) -> None:
    X, _, report = churn_report
    numeric, categorical = _run(notebooks._STATS, report)
    assert set(numeric.index) == {"tenure", "noise"}
    assert "Contract" not in numeric.index
    row = categorical.loc["Contract"]
    top = X["Contract"].value_counts()
    assert row["count"] == X["Contract"].notna().sum()
    assert row["distinct"] == 3 and row["top value"] == top.index[0]
    assert row["top share"] == pytest.approx(top.iloc[0] / row["count"], abs=1e-4)
    assert not categorical.isna().any().any()
    assert not {"mean", "std", "skew"} & set(categorical.columns)


def test_the_insight_fixes_are_shown_whole() -> None:
    setup = next(text for kind, text in notebooks._CELLS if "max_colwidth" in text)
    assert "pd.set_option('display.max_colwidth', None)" in setup
