"""Batch transform: chunked, resumable, filters and joins, on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from servinglib import churn_table

from tabpilot.artifacts import load
from tabpilot.errors import DataError
from tabpilot.serving.batch import TransformSettings, csv_text, select_columns, transform

TABLE = churn_table(1000, seed=9).drop(columns="label")


@pytest.fixture
def model(models):
    return load(models["binary"])


def test_a_file_larger_than_the_chunk_is_scored_in_full(tmp_path: Path, model) -> None:
    src = tmp_path / "in.csv"
    TABLE.to_csv(src, index=False)
    done = transform(model, src, tmp_path / "out", TransformSettings(chunk_rows=128))
    assert done == {"in.csv": 1000}
    out = pd.read_csv(tmp_path / "out" / "in.csv.out")
    assert len(out) == 1000
    assert list(out.columns) == ["predicted_label", "probability"]
    assert list(out["predicted_label"]) == list(model.predict(TABLE))


def test_a_folder_of_csv_and_parquet_and_resuming(tmp_path: Path, model) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    TABLE.iloc[:300].to_csv(folder / "a.csv", index=False)
    TABLE.iloc[300:].to_parquet(folder / "b.parquet")
    out = tmp_path / "out"
    first = transform(model, folder, out, TransformSettings(chunk_rows=100))
    assert first == {"a.csv": 300, "b.parquet": 700}
    (out / "b.parquet.out").unlink()
    before = (out / "a.csv.out").stat().st_mtime_ns
    second = transform(model, folder, out, TransformSettings(chunk_rows=100))
    assert second == {"a.csv": 0, "b.parquet": 700}  # a.csv was done: skipped
    assert (out / "a.csv.out").stat().st_mtime_ns == before
    assert not list(out.glob(".*partial"))


def test_headerless_csv_in_training_order(tmp_path: Path, model) -> None:
    src = tmp_path / "rows.csv"
    TABLE.to_csv(src, index=False, header=False)
    transform(model, src, tmp_path / "out", TransformSettings(chunk_rows=300))
    out = pd.read_csv(tmp_path / "out" / "rows.csv.out")
    assert list(out["predicted_label"]) == list(model.predict(TABLE))


def test_join_input_and_output_filter(tmp_path: Path, model) -> None:
    src = tmp_path / "in.csv"
    TABLE.iloc[:50].to_csv(src, index=False)
    settings = TransformSettings(join_input=True, output_filter="$[0,-1]",
                                 output_keys="predicted_label,probability")
    transform(model, src, tmp_path / "out", settings)
    out = pd.read_csv(tmp_path / "out" / "in.csv.out")
    assert list(out.columns) == ["customer_id", "probability"]
    assert list(out["customer_id"]) == list(TABLE["customer_id"].iloc[:50])


def test_input_filter_drops_a_leading_column(tmp_path: Path, model) -> None:
    src = tmp_path / "in.csv"
    TABLE.iloc[:60].assign(row=range(60))[["row", *TABLE.columns]].to_csv(src, index=False)
    transform(model, src, tmp_path / "out", TransformSettings(input_filter="$[1:]"))
    out = pd.read_csv(tmp_path / "out" / "in.csv.out")
    assert list(out["predicted_label"]) == list(model.predict(TABLE.iloc[:60]))


def test_jsonlines_output_with_all_keys(tmp_path: Path, model) -> None:
    src = tmp_path / "in.csv"
    TABLE.iloc[:20].to_csv(src, index=False)
    transform(model, src, tmp_path / "out", TransformSettings(
        accept="application/jsonlines", output_keys="predicted_label,probabilities,labels"))
    rows = [json.loads(x) for x in (tmp_path / "out" / "in.csv.out").read_text().splitlines()]
    assert len(rows) == 20
    assert rows[0]["labels"] == ["no", "yes"] and len(rows[0]["probabilities"]) == 2


@pytest.mark.parametrize("spec, columns", [
    ("$", ["a", "b", "c"]), ("$[0]", ["a"]), ("$[0,-1]", ["a", "c"]), ("$[1:]", ["b", "c"]),
    ("$[:2]", ["a", "b"]), ("$['c','a']", ["c", "a"]),
])
def test_select_columns(spec: str, columns: list[str]) -> None:
    df = pd.DataFrame([[1, 2, 3]], columns=["a", "b", "c"])
    assert list(select_columns(df, spec).columns) == columns


def test_bad_filters_and_inputs_are_clear(tmp_path: Path, model) -> None:
    with pytest.raises(DataError, match="unsupported filter"):
        select_columns(TABLE, "$.foo")
    with pytest.raises(DataError, match="does not exist"):
        transform(model, tmp_path / "missing.csv", tmp_path / "out", TransformSettings())
    odd = tmp_path / "odd.csv"
    odd.write_text("1,2\n3,4\n")
    with pytest.raises(DataError, match="has 2 columns"):
        transform(model, odd, tmp_path / "out", TransformSettings())


def test_cli_transform(tmp_path: Path, models) -> None:
    src = tmp_path / "in.csv"
    TABLE.iloc[:100].to_csv(src, index=False)
    cmd = [sys.executable, "-m", "tabpilot.cli", "transform", str(models["binary"]), str(src),
           "--output", str(tmp_path / "out"), "--chunk-rows", "30"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(tmp_path / "out" / "in.csv.out")) == 100
    bad = subprocess.run(cmd[:-1] + ["0"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "chunk rows" in bad.stderr


def test_the_compiled_path_writes_what_the_python_path_writes(tmp_path: Path, models,
                                                              monkeypatch) -> None:
    src = tmp_path / "in.csv"
    TABLE.to_csv(src, index=False)
    settings = TransformSettings(chunk_rows=256, output_keys="predicted_label,probability,"
                                                            "probabilities")
    fast = load(models["binary"])
    assert fast.compiled
    transform(fast, src, tmp_path / "fast", settings)
    monkeypatch.setenv("TABPILOT_COMPILED", "0")
    slow = load(models["binary"])
    assert not slow.compiled
    transform(slow, src, tmp_path / "slow", settings)
    a, b = (pd.read_csv(tmp_path / d / "in.csv.out") for d in ("fast", "slow"))
    assert list(a["predicted_label"]) == list(b["predicted_label"])
    assert np.allclose(a["probability"], b["probability"], rtol=0, atol=1e-6)
    assert np.allclose(np.array([json.loads(p) for p in a["probabilities"]]),
                       np.array([json.loads(p) for p in b["probabilities"]]), atol=1e-6)


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"p": [0.1 + 0.2, 1.0, -0.0, 1e-5, 1e20, np.nan, np.inf], "n": range(7)}),
    pd.DataFrame({"label": ["a", "b,c", 'say "hi"', "two\nlines", " pad ", None, ""]}),
    pd.DataFrame({"": ["", "x"]}),
    pd.DataFrame({"mixed": [1, 2.5, True, None, float("nan"), "t", "[0.1, 0.9]"]}, dtype=object),
    pd.DataFrame({"flag": [True, False], "count": np.array([3, 4], dtype=np.uint8)}),
    pd.DataFrame({"a": [], "b": []}),
], ids=["floats", "text", "empty-names", "objects", "bools-ints", "no-rows"])
@pytest.mark.parametrize("header", [True, False])
def test_csv_text_is_what_pandas_writes(frame: pd.DataFrame, header: bool) -> None:
    assert csv_text(frame, header) == frame.to_csv(index=False, header=header)


def test_a_read_error_in_the_reading_thread_reaches_the_caller(tmp_path: Path, model) -> None:
    src = tmp_path / "bad.csv"
    TABLE.iloc[:50].to_csv(src, index=False)
    with open(src, "a") as f:
        f.write("C9,1,2,3,4,5,6,7,8\n")  # too many fields, past the first block
    with pytest.raises(DataError, match="bad.csv"):
        transform(model, src, tmp_path / "out", TransformSettings(chunk_rows=10))
    assert not (tmp_path / "out" / "bad.csv.out").exists()
