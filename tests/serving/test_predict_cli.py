"""`tabpilot predict` and `tabpilot evaluate`, and `reports.evaluate.evaluate`.

predict: CSV on stdout without --output (messages on stderr), --id-column, --join-input,
the positive class's probability named for it, the input check (exit 2 naming row and
column, or --on-bad-value missing, counted), a note when the table has the target.
evaluate: the job's metrics, equal to scikit-learn's on the same predictions, with
bootstrap intervals.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from predictlib import WIDE, build, wide_table
from servinglib import churn_table
from sklearn import metrics as skm

from tabpilot.artifacts import load
from tabpilot.reports.evaluate import evaluate
from tabpilot.tasks import ProblemType


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TABPILOT_WORKSPACE"}
    env["COLUMNS"] = "80"
    return subprocess.run([sys.executable, "-m", "tabpilot.cli", *args], capture_output=True,
                          text=True, timeout=180, env=env)


def one_error_line(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def noisy(table: pd.DataFrame, share: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """`table` with a share of its labels flipped: held-out rows the model gets wrong."""
    flip = np.random.default_rng(seed).random(len(table)) < share
    return table.assign(label=np.where(flip, table["label"].map({"yes": "no", "no": "yes"}),
                                       table["label"]))


@pytest.fixture(scope="module")
def churn(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("churn") / "churn" / "model", churn_table(300), "label")


@pytest.fixture(scope="module")
def amounts(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    def table(n: int, seed: int) -> pd.DataFrame:
        df = churn_table(n, seed=seed).drop(columns="label")
        noise = np.random.default_rng(seed).normal(0, 15, n)
        return df.assign(amount=df["tenure"] * 3 + df["plan"].map(
            {"basic": 10, "plus": 40, "pro": 90}) + noise + 20)

    model = build(tmp_path_factory.mktemp("reg") / "reg" / "model", table(300, 0), "amount",
                  ProblemType.REGRESSION)
    return model, table(80, 11)


def test_predict_writes_csv_to_stdout_with_the_id_column(churn, tmp_path) -> None:
    rows = churn_table(25, seed=7).drop(columns="label")
    src = tmp_path / "new.csv"
    rows.to_csv(src, index=False)
    proc = run_cli("predict", str(churn), str(src), "--id-column", "customer_id")
    assert proc.returncode == 0, proc.stderr
    assert "predicted_label" not in proc.stderr  # the CSV is on stdout only
    got = pd.read_csv(io.StringIO(proc.stdout))
    assert list(got.columns) == ["customer_id", "predicted_label", "predicted_probability",
                                 "probability_no", "probability_yes"]
    model = load(churn)
    assert list(got["customer_id"]) == list(rows["customer_id"])
    assert list(got["predicted_label"]) == list(model.predict(rows))
    proba = model.predict_proba(rows)
    assert np.allclose(got["probability_yes"], proba["yes"], atol=1e-9)
    chosen = np.where(got["predicted_label"] == "yes", got["probability_yes"],
                      got["probability_no"])
    assert np.allclose(got["predicted_probability"], chosen)


def test_predict_joins_the_input_reads_bad_values_as_missing_on_request_and_names_the_target(
        churn, tmp_path) -> None:
    table = noisy(churn_table(30, seed=8)).astype(object)
    table.loc[4, "tenure"], table.loc[6, "plan"] = "fifty", "gold"
    src, out = tmp_path / "with_target.csv", tmp_path / "preds" / "out.csv"
    table.to_csv(src, index=False)
    proc = run_cli("predict", str(churn), str(src), "--join-input", "--on-bad-value",
                   "missing", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    got = pd.read_csv(out)
    assert list(got.columns) == [*table.columns, "predicted_label", "predicted_probability",
                                 "probability_no", "probability_yes"]
    assert list(got["customer_id"]) == list(table["customer_id"])
    assert "1 unreadable value read as missing ('tenure': 1)" in proc.stderr
    assert "1 category not seen in training ('plan': 1)" in proc.stderr
    assert "target column 'label'" in proc.stderr and "tabpilot evaluate" in proc.stderr


def test_predict_refuses_a_bad_value_naming_row_column_and_the_opt_in(churn, tmp_path) -> None:
    table = churn_table(10, seed=9).drop(columns="label").astype(object)
    table.loc[6, "charges"] = "abc"
    src = tmp_path / "bad.csv"
    table.to_csv(src, index=False)
    one_error_line(run_cli("predict", str(churn), str(src)),
                   "row 7", "'charges'", "'abc'", "--on-bad-value missing")


def test_predict_lists_missing_columns_with_the_count_of_the_rest(tmp_path) -> None:
    model = build(tmp_path / "wide" / "model", wide_table(), "label")
    src = tmp_path / "few.csv"
    wide_table(5, seed=4)[["f00"]].to_csv(src, index=False)
    one_error_line(run_cli("predict", str(model), str(src)),
                   f"{WIDE - 1} required columns: 'f01'", f"and {WIDE - 1 - 10} more")


# -- evaluate -----------------------------------------------------------------------------
def test_evaluate_equals_scikit_learn_on_a_binary_model(churn) -> None:
    table = noisy(churn_table(120, seed=10))
    model = load(churn)
    X, y = table.drop(columns="label"), table["label"].to_numpy()
    labels, proba = model.predict(X), model.predict_proba(X)
    result = evaluate(model, table)
    m = result["metrics"]
    assert result["objective"] == "F1" and list(m)[0] == "F1"
    assert result["positive_class"] == "yes" and result["rows"] == 120
    expected = {
        "F1": skm.f1_score(y, labels, pos_label="yes"),
        "Accuracy": skm.accuracy_score(y, labels),
        "BalancedAccuracy": skm.balanced_accuracy_score(y, labels),
        "Precision": skm.precision_score(y, labels, pos_label="yes"),
        "Recall": skm.recall_score(y, labels, pos_label="yes"),
        "AUC": skm.roc_auc_score(y == "yes", proba["yes"]),
        "LogLoss": skm.log_loss(y, proba[["no", "yes"]].to_numpy(), labels=["no", "yes"]),
    }
    assert set(m) == set(expected)
    for name, value in expected.items():
        assert m[name]["value"] == pytest.approx(value, abs=1e-9), name
        assert m[name]["lower"] <= m[name]["value"] <= m[name]["upper"], (name, m[name])
    assert m["Accuracy"]["upper"] - m["Accuracy"]["lower"] > 0.01  # 120 rows: not exact


def test_evaluate_equals_scikit_learn_on_a_regression_model(amounts) -> None:
    directory, table = amounts
    model = load(directory)
    truth, pred = table["amount"].to_numpy(), model.predict(table.drop(columns="amount"))
    with_gap = table.copy()
    with_gap.loc[0, "amount"] = np.nan  # rows without a target are left out
    result = evaluate(model, with_gap, confidence=0.9)
    m = result["metrics"]
    assert result["rows"] == 79 and result["rows_without_target"] == 1
    truth, pred = truth[1:], pred[1:]
    expected = {
        "MSE": skm.mean_squared_error(truth, pred),
        "RMSE": np.sqrt(skm.mean_squared_error(truth, pred)),
        "MAE": skm.mean_absolute_error(truth, pred),
        "R2": skm.r2_score(truth, pred),
        "MAPE": skm.mean_absolute_percentage_error(truth, pred),
    }
    assert set(m) == set(expected)
    for name, value in expected.items():
        assert m[name]["value"] == pytest.approx(value, rel=1e-9), name
        assert m[name]["lower"] < m[name]["value"] < m[name]["upper"], (name, m[name])


def test_evaluate_cli_json_is_the_python_result_and_bad_targets_are_clear(churn, tmp_path
                                                                          ) -> None:
    table = noisy(churn_table(60, seed=12))
    src = tmp_path / "held_out.csv"
    table.to_csv(src, index=False)
    proc = run_cli("evaluate", str(churn), str(src), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(json.dumps(evaluate(load(churn), table)))
    from tabpilot.errors import TargetError

    with pytest.raises(TargetError, match="no column 'label'"):
        evaluate(load(churn), table.drop(columns="label"))
    with pytest.raises(TargetError, match="'maybe'"):
        evaluate(load(churn), table.assign(label="maybe"))
