"""read_table on inputs people actually have: legacy encodings, nested JSON, duplicate
names, workbooks renamed to .csv. Read when it can be read right; else one clear DataError."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.data.read import read_table
from tabpilot.errors import DataError

CITIES = ["Zürich", "Québec", "Besançon", "Málaga"]


def _cities(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame({"city": (CITIES * n)[:n], "x": np.arange(n), "label": ["a", "b"] * (n // 2)})


def test_cp1252_csv_is_read_with_a_warning_naming_the_encoding(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "excel.csv"
    _cities().assign(note="“quoted” – dash").to_csv(path, index=False, encoding="cp1252")
    with caplog.at_level(logging.WARNING, logger="tabpilot.data.read"):
        df = read_table(path)
    assert df["city"].tolist()[:4] == CITIES
    assert df["note"].iloc[0] == "“quoted” – dash"  # cp1252, not latin-1: these are 0x93 etc.
    assert "not UTF-8" in caplog.text and "cp1252" in caplog.text
    assert "save it as UTF-8" in caplog.text


def test_bytes_cp1252_leaves_undefined_fall_back_to_latin1(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "latin1.csv"
    rows = b"".join(b"Z\xfcrich \x81,%d,%s\n" % (i, b"ab"[i % 2:i % 2 + 1]) for i in range(30))
    path.write_bytes(b"city,x,label\n" + rows)
    with caplog.at_level(logging.WARNING, logger="tabpilot.data.read"):
        df = read_table(path)
    assert df["city"].iloc[0] == "Zürich \x81"
    assert "latin-1" in caplog.text


def test_non_utf8_bytes_after_the_first_64_kib_are_still_decoded(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    ascii_rows = b"".join(b"Paris,%d,a\n" % i for i in range(10_000))  # ~100 KiB of ASCII
    path.write_bytes(b"city,x,label\n" + ascii_rows + b"Z\xfcrich,1,b\n")
    df = read_table(path)
    assert df["city"].iloc[-1] == "Zürich"
    assert df["city"].map(type).eq(str).all()  # no bytes objects left for pandas to choke on


def test_utf16_and_utf8_bom_files_are_read(tmp_path: Path) -> None:
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text("city;label\nZürich;a\nQuébec;b\n", encoding="utf-16")
    assert read_table(utf16)["city"].tolist() == ["Zürich", "Québec"]
    bom = tmp_path / "bom.csv"
    bom.write_text("city,label\nZürich,a\n", encoding="utf-8-sig")
    assert list(read_table(bom).columns) == ["city", "label"]


def test_nested_json_objects_are_flattened_like_json_normalize(tmp_path: Path) -> None:
    path = tmp_path / "nested.jsonl"
    records = [{"id": i, "meta": {"x": i / 2, "geo": {"lat": 1.5, "lon": -2.0}}, "label": "ab"[i % 2]}
               for i in range(6)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    df = read_table(path)
    expected = pd.json_normalize(records)
    assert sorted(df.columns) == sorted(expected.columns)
    assert df["meta.geo.lat"].tolist() == [1.5] * 6
    assert df["meta.x"].tolist() == expected["meta.x"].tolist()


def test_json_lists_are_refused_naming_the_column(tmp_path: Path) -> None:
    path = tmp_path / "lists.jsonl"
    path.write_text("".join(json.dumps({"tags": ["a"] * i, "label": i}) + "\n" for i in range(5)))
    with pytest.raises(DataError, match=r"column 'tags' holds lists"):
        read_table(path)


def test_duplicate_column_names_are_refused_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a,c,c,label\n" + "1,2,3,4,5,x\n" * 3)
    with pytest.raises(DataError, match=r"duplicate column names: 'a', 'c'; give every"):
        read_table(path)
    frame = pd.DataFrame([[1, 2, 3]], columns=["a", "a", "label"])
    with pytest.raises(DataError, match=r"the DataFrame has duplicate column names: 'a'"):
        read_table(frame)


@pytest.mark.parametrize(("magic", "what"), [(b"PK\x03\x04", "xlsx"), (
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "xls")])
def test_a_workbook_renamed_to_csv_says_so(tmp_path: Path, magic: bytes, what: str) -> None:
    path = tmp_path / "book.csv"
    path.write_bytes(magic + b"\x00\x14\x00\x06" * 50)
    with pytest.raises(DataError, match=rf"book.csv looks like .*\.{what}.*save it as CSV"):
        read_table(path)


def test_a_parse_error_quoting_a_huge_row_stays_short(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n" + ",".join(["9"] * 200_000) + "\n")
    with pytest.raises(DataError) as info:
        read_table(path)
    assert "could not be read as csv" in str(info.value)
    assert len(str(info.value)) < 400
