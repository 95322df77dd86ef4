"""Read a table from a path or any fsspec URI (CSV, gzip CSV, Parquet, JSON lines) through pyarrow."""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from tabpilot.data import sniff
from tabpilot.errors import DataError, shown
from tabpilot.roots import AllowedRoots

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
        _check_unique_names("the DataFrame", list(source.columns))
        return source.copy(deep=copy)
    uri = str(source)
    where = AllowedRoots.unconfined().resolve(uri, "table")  # TABPILOT_ALLOWED_ROOTS confines
    fmt = detect_format(uri)
    nas = list(DEFAULT_NA_VALUES) + list(na_values or [])
    try:
        with fsspec.open(where, "rb", compression="infer") as f:
            head = f.read(8)
            if not head:
                raise DataError(f"{uri} is empty; give a table with a header row and data rows")
            sniff.check_is_table(uri, head)
            f.seek(0)
            table = _read_arrow(f, fmt, nas, uri)
    except FileNotFoundError:
        raise DataError(f"{uri} does not exist; check the path or URI") from None
    except IsADirectoryError:
        raise DataError(f"{uri} is a folder; give the path of a CSV, Parquet or JSON-lines file") from None
    except PermissionError:
        raise DataError(f"{uri} cannot be read (permission denied); check its permissions") from None
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if len(first) > 200:  # pyarrow quotes the offending row, which may be megabytes
            first = first[:197] + "..."
        raise DataError(f"{uri} could not be read as {fmt}: {first}") from None
    table = _flatten(uri, table)
    _check_unique_names(uri, table.column_names)
    df = table.to_pandas()
    if len(df.columns) == 0:
        raise DataError(f"{uri} has no columns; give a table with a header row")
    if fmt == "csv":
        _check_header(uri, df)
    if len(df) == 0:
        raise DataError(f"{uri} has a header but no data rows")
    log.info("read %s: %d rows x %d columns", uri, len(df), len(df.columns))
    return df


def _read_arrow(f, fmt: str, na_values: list[str], uri: str) -> pa.Table:
    if fmt == "parquet":
        return pq.read_table(f)
    if fmt == "jsonl":
        return pajson.read_json(f)
    sample = f.read(64 * 1024)
    f.seek(0)
    encoding = sniff.text_encoding(sample)
    delimiter = sniff.delimiter(sample.decode(encoding or "latin-1", errors="replace"))
    if encoding is not None:
        table = _read_csv(f, delimiter, na_values, encoding)
        # pyarrow reads a column holding bytes that are not UTF-8 as binary: the file's
        # first 64 KiB were UTF-8 (or ASCII), a later row is not
        if not any(pa.types.is_binary(t) for t in table.schema.types):
            return table
        f.seek(0)
    # Windows' Western European code page is what Excel on Windows writes as "CSV"; it
    # leaves five bytes undefined, and Latin-1, defining all 256, reads those files
    try:
        table, legacy = _read_csv(f, delimiter, na_values, "cp1252"), "cp1252"
    except UnicodeDecodeError:
        f.seek(0)
        table, legacy = _read_csv(f, delimiter, na_values, "latin-1"), "latin-1"
    log.warning("%s is not UTF-8; read it as %s (Western European). If its accented letters "
                "come out wrong, save it as UTF-8 and run again", uri, legacy)
    return table


def _read_csv(f, delimiter: str, na_values: list[str], encoding: str) -> pa.Table:
    return pacsv.read_csv(
        f,
        read_options=pacsv.ReadOptions(block_size=16 << 20, encoding=encoding),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            null_values=na_values, strings_can_be_null=True, quoted_strings_can_be_null=True
        ),
    )


def _flatten(uri: str, table: pa.Table) -> pa.Table:
    """Nested objects (JSON lines, Parquet structs) become columns named as
    pandas.json_normalize names them: {"meta": {"x": 1}} gives a column `meta.x`. Lists
    have no such flat form; they are refused, naming the column."""
    while any(pa.types.is_struct(t) for t in table.schema.types):
        table = table.flatten()
    for field in table.schema:
        t = field.type
        if (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
                or pa.types.is_map(t)):
            raise DataError(f"{uri}: column {shown(field.name)} holds lists, and a model needs "
                            "one value per column and row; split the list into columns or "
                            "join it into one text value")
    return table


def _check_unique_names(where: str, names: list) -> None:
    """Two columns of one name make every `df[name]` a table instead of a column."""
    repeated = [name for name, n in Counter(names).items() if n > 1]
    if repeated:
        listed = ", ".join(shown(name) for name in repeated[:5])
        more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        raise DataError(f"{where} has duplicate column names: {listed}{more}; give every "
                        "column a unique name in the header")


_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _check_header(uri: str, df: pd.DataFrame) -> None:
    """A CSV whose 'header' is all numbers was most likely written without one."""
    names = [str(c) for c in df.columns]
    if len(names) >= 2 and all(_NUMBER.match(n) for n in names):
        raise DataError(
            f"{uri} has no header row (its first line is all numbers: "
            f"{', '.join(n[:20] for n in names[:4])}...); "
            "add a first line with the column names"
        )
