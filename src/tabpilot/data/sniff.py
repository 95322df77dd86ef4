"""What a table file's first bytes say: not a table at all, its text encoding, its delimiter."""

from __future__ import annotations

import codecs

from tabpilot.errors import DataError

# Files people rename to .csv. Without this check pyarrow reads an .xlsx's zip bytes as
# one garbled text column, or fails with a message about UTF-8 that hides the real cause.
_NOT_A_TABLE = {
    b"PK\x03\x04": "an Excel workbook (.xlsx) or a zip archive",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "an old Excel workbook (.xls)",
}

_BOMS_UTF16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def check_is_table(uri: str, head: bytes) -> None:
    """DataError when `head` (a file's first bytes) starts like a workbook or an archive."""
    for magic, what in _NOT_A_TABLE.items():
        if head.startswith(magic):
            raise DataError(f"{uri} looks like {what}, not a CSV, Parquet or JSON-lines "
                            "table; open it in Excel and save it as CSV (CSV UTF-8), "
                            "or unzip it first")


def text_encoding(sample: bytes) -> str | None:
    """The encoding `sample` (a text file's first bytes) is in: 'utf-16' after a UTF-16
    byte order mark, 'utf8' when it decodes as UTF-8 (with or without a BOM, which the
    CSV reader drops), None when it does not."""
    if sample.startswith(_BOMS_UTF16):
        return "utf-16"
    try:  # incremental: a character cut at the sample's end is not an error
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return None
    return "utf8"


def delimiter(text: str) -> str:
    """The most frequent of , ; tab | in the first line (comma when there is none)."""
    first = text.splitlines()[0] if text else ""
    counts = {d: first.count(d) for d in [",", ";", "\t", "|"]}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","
