from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.data.read import read_table
from tabpilot.errors import DataError


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "age": rng.integers(18, 80, 30),
        "income": np.round(rng.normal(50_000, 10_000, 30), 2),
        "city": rng.choice(["Oslo", "Lima", "Pune"], 30),
    })


def _assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    np.testing.assert_array_equal(got["age"].to_numpy(), expected["age"].to_numpy())
    np.testing.assert_allclose(got["income"].to_numpy(), expected["income"].to_numpy())
    assert got["city"].tolist() == expected["city"].tolist()


def _read_error(source) -> str:
    with pytest.raises(DataError) as info:
        read_table(source)
    message = str(info.value)
    assert "\n" not in message, "errors are shown as one line"
    return message


def test_reads_csv(tmp_path: Path) -> None:
    df = _frame()
    path = tmp_path / "table.csv"
    df.to_csv(path, index=False)
    _assert_same(read_table(path), df)


def test_reads_csv_given_as_string_path(tmp_path: Path) -> None:
    df = _frame()
    path = tmp_path / "table.csv"
    df.to_csv(path, index=False)
    _assert_same(read_table(str(path)), df)


def test_reads_gzip_csv(tmp_path: Path) -> None:
    df = _frame()
    path = tmp_path / "table.csv.gz"
    with gzip.open(path, "wt") as f:
        df.to_csv(f, index=False)
    _assert_same(read_table(path), df)


def test_reads_parquet_keeping_dtypes(tmp_path: Path) -> None:
    df = _frame()
    path = tmp_path / "table.parquet"
    df.to_parquet(path, index=False)
    got = read_table(path)
    _assert_same(got, df)
    assert pd.api.types.is_integer_dtype(got["age"])
    assert pd.api.types.is_float_dtype(got["income"])


def test_reads_json_lines(tmp_path: Path) -> None:
    df = _frame()
    path = tmp_path / "table.jsonl"
    df.to_json(path, orient="records", lines=True)
    _assert_same(read_table(path), df)


def test_reads_file_uri(tmp_path: Path) -> None:
    df = _frame()
    path = tmp_path / "table.csv"
    df.to_csv(path, index=False)
    _assert_same(read_table(f"file://{path.resolve()}"), df)


def test_dataframe_is_returned_as_a_copy() -> None:
    df = _frame()
    got = read_table(df)
    _assert_same(got, df)
    got.loc[0, "age"] = -1
    assert df.loc[0, "age"] != -1


def test_empty_dataframe_raises() -> None:
    _read_error(pd.DataFrame())


def test_semicolon_delimited_csv(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("a;b;c\n1;x;2.5\n2;y;3.5\n3;z;4.5\n")
    got = read_table(path)
    assert list(got.columns) == ["a", "b", "c"]
    assert got["a"].tolist() == [1, 2, 3]
    assert got["b"].tolist() == ["x", "y", "z"]
    np.testing.assert_allclose(got["c"], [2.5, 3.5, 4.5])


def test_tab_delimited_csv(tmp_path: Path) -> None:
    path = tmp_path / "table.tsv"
    path.write_text("a\tb\n1\tx\n2\ty\n")
    got = read_table(path)
    assert list(got.columns) == ["a", "b"]
    assert got["b"].tolist() == ["x", "y"]


def test_blank_and_na_strings_become_missing(tmp_path: Path) -> None:
    path = tmp_path / "blanks.csv"
    path.write_text("a,b\n1, \n2,NA\n3,4.5\n")
    got = read_table(path)
    assert pd.api.types.is_float_dtype(got["b"])
    assert got["b"].isna().tolist() == [True, True, False]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    message = _read_error(path)
    assert str(path) in message
    assert "does not exist" in message


@pytest.mark.parametrize("name, content, words", [
    ("empty.csv", b"", "empty"),
    ("header.csv", b"a,b,c\n", "no data rows"),
    ("noheader.csv", b"1,2.5,-3\n4,5,6\n7,8,9\n", "no header"),
])
def test_unusable_csv_files_name_the_file_and_the_problem(tmp_path: Path, name: str,
                                                          content: bytes, words: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    message = _read_error(path)
    assert str(path) in message
    assert words in message


def test_header_with_some_numeric_names_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "years.csv"
    path.write_text("name,2020,2021\nx,1,2\ny,3,4\n")
    assert list(read_table(path).columns) == ["name", "2020", "2021"]


def test_directory_path(tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    folder.mkdir()
    message = _read_error(folder)
    assert str(folder) in message
    assert "folder" in message


def test_unreadable_parquet_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_text("this is not parquet\nat all\n")
    message = _read_error(path)
    assert str(path) in message
    assert "parquet" in message
