from __future__ import annotations

import numpy as np
import pandas as pd

from tabpilot.data.profile import profile
from tabpilot.data.schema import infer_schema
from tabpilot.tasks import ProblemType


def _frame(n: int = 800, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = pd.DataFrame({
        "signal": y * 1.0 + rng.normal(0, 1.0, n),
        "noise": rng.normal(size=n),
        "leak": y * 10.0 + rng.normal(0, 0.01, n),  # the label in disguise
        "city": rng.choice(["a", "b", "?"], n),
        "const": 1,
        "amount": np.exp(rng.normal(0, 3, n)),
    })
    return X, y


def test_a_planted_leak_is_flagged_high_and_named() -> None:
    X, y = _frame()
    schema = infer_schema(X)
    out = profile(X, y, schema, ProblemType.BINARY, ["no", "yes"])
    leaks = [i for i in out["insights"] if i["kind"] == "target_leakage"]
    assert [i["columns"] for i in leaks] == [["leak"]]
    assert leaks[0]["severity"] == "high" and "leak" in leaks[0]["message"]
    assert out["insights"][0]["severity"] == "high"  # most severe first


def test_markers_constants_and_power() -> None:
    X, y = _frame()
    out = profile(X, y, infer_schema(X), ProblemType.BINARY, ["no", "yes"])
    kinds = {i["kind"]: i for i in out["insights"]}
    assert kinds["missing_value_markers"]["columns"] == ["city"]
    assert kinds["constant_columns"]["columns"] == ["const"]
    power = out["prediction_power"]
    assert all(0 <= v <= 1 for v in power.values())
    assert power["leak"] > power["signal"] > power["noise"]
    assert out["target"]["class_counts"] == {"no": int((y == 0).sum()), "yes": int(y.sum())}
    assert len(out["anomalous_rows"]) == 10
    assert set(out["correlation"]["columns"]) >= {"signal", "noise"}
    # the most suspicious columns come first in the statistics
    assert out["column_stats"][0]["column"] in {"leak", "city", "const", "amount"}


def test_imbalance_and_regression_outliers() -> None:
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"x": rng.normal(size=1000)})
    y = (rng.random(1000) < 0.02).astype(int)
    out = profile(X, y, infer_schema(X), ProblemType.BINARY, [0, 1])
    assert any(i["kind"] == "class_imbalance" for i in out["insights"])
    target = rng.normal(size=1000)
    target[:3] = 50
    out = profile(X, target, infer_schema(X), ProblemType.REGRESSION, None)
    assert any(i["kind"] == "target_outliers" for i in out["insights"])


def test_the_exploration_notebook_executes_and_shows_the_leak(tmp_path) -> None:
    import json

    import nbformat

    from tabpilot.reports.notebooks import exploration_notebook

    X, y = _frame(300)
    out = profile(X, y, infer_schema(X), ProblemType.BINARY, ["no", "yes"])
    (tmp_path / "data_exploration.json").write_text(json.dumps(out))
    # the notebook finds its job folder by the job.json naming its job
    (tmp_path / "job.json").write_text(json.dumps({"request": {"name": "job-x"}}))
    path = exploration_notebook(tmp_path, "job-x")
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code)  # executed top to bottom
    text = json.dumps([c.outputs for c in code])
    assert "target_leakage" in text and "image/png" in text
    assert not [o for c in code for o in c.outputs if o.get("output_type") == "error"]


def test_prediction_power_of_a_regression_target_with_all_distinct_text() -> None:
    """A free-text column (every value distinct) used to empty scikit-learn's discrete
    estimator, failing the whole analysis of the table."""
    from tabpilot.data.profile import prediction_power

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200),
                      "review": [f"review number {i} of the product" for i in range(200)]})
    power = prediction_power(X, rng.normal(size=200), infer_schema(X), ProblemType.REGRESSION)
    assert set(power) == {"a", "review"} and all(0 <= v <= 1 for v in power.values())
