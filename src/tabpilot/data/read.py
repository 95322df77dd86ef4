"""Read a table from a path or any fsspec URI (CSV, gzip CSV, Parquet, JSON lines) through pyarrow."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from tabpilot.errors import DataError

log = logging.getLogger("tabpilot.data.read")

# Strings read as missing values in every text column.
DEFAULT_NA_VALUES = ["", " ", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "#N/A"]

_FORMATS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
}
_COMPRESSIONS = {".gz", ".bz2", ".xz", ".zst", ".zip"}


def detect_format(uri: str) -> str:
    suffixes = [s.lower() for s in Path(uri.split("?")[0]).suffixes]
    while suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes.pop()
    return _FORMATS.get(suffixes[-1], "csv") if suffixes else "csv"


def read_table(source: str | Path | pd.DataFrame, na_values: list[str] | None = None,
               copy: bool = True) -> pd.DataFrame:
    """Read `source` into a DataFrame; a DataFrame is returned as a copy (with `copy`
    False, as a new frame sharing its column arrays: for readers that never write into
    them, and that a deep copy would cost as much memory again as the table).

    Raises DataError with a one-line explanation for missing, unreadable, empty or
    header-less files.
    """
    if isinstance(source, pd.DataFrame):
        if source.empty or len(source.columns) == 0:
            raise DataError("the DataFrame is empty; pass a table with a header row and data rows")
        return source.copy(deep=copy)
    uri = str(source)
    fmt = detect_format(uri)
    nas = list(DEFAULT_NA_VALUES) + list(na_values or [])
    try:
        with fsspec.open(uri, "rb", compression="infer") as f:
            head = f.read(1)
            if not head:
                raise DataError(f"{uri} is empty; give a table with a header row and data rows")
            f.seek(0)
            table = _read_arrow(f, fmt, nas)
    except FileNotFoundError:
        raise DataError(f"{uri} does not exist; check the path or URI") from None
    except IsADirectoryError:
        raise DataError(f"{uri} is a folder; give the path of a CSV, Parquet or JSON-lines file") from None
    except PermissionError:
        raise DataError(f"{uri} cannot be read (permission denied); check its permissions") from None
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{uri} could not be read as {fmt}: {first}") from None
    df = table.to_pandas()
    if len(df.columns) == 0:
        raise DataError(f"{uri} has no columns; give a table with a header row")
    if fmt == "csv":
        _check_header(uri, df)
    if len(df) == 0:
        raise DataError(f"{uri} has a header but no data rows")
    log.info("read %s: %d rows x %d columns", uri, len(df), len(df.columns))
    return df


def _read_arrow(f, fmt: str, na_values: list[str]) -> pa.Table:
    if fmt == "parquet":
        return pq.read_table(f)
    if fmt == "jsonl":
        return pajson.read_json(f)
    sample = f.read(64 * 1024)
    f.seek(0)
    delimiter = _sniff_delimiter(sample.decode("utf-8", errors="replace"))
    return pacsv.read_csv(
        f,
        read_options=pacsv.ReadOptions(block_size=16 << 20),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            null_values=na_values, strings_can_be_null=True, quoted_strings_can_be_null=True
        ),
    )


def _sniff_delimiter(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    counts = {d: first.count(d) for d in [",", ";", "\t", "|"]}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _check_header(uri: str, df: pd.DataFrame) -> None:
    """A CSV whose 'header' is all numbers was most likely written without one."""
    names = [str(c) for c in df.columns]
    if len(names) >= 2 and all(_NUMBER.match(n) for n in names):
        raise DataError(
            f"{uri} has no header row (its first line is all numbers: {', '.join(names[:4])}...); "
            "add a first line with the column names"
        )
