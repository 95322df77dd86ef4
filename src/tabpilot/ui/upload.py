"""A table uploaded from the browser, streamed to the workspace's `uploads/` folder.

The body is written as it arrives (never held in memory), cut off at `max_bytes` with
one clear line, and lands under its final name only when complete, so a job never reads
half a file. The name the browser sends is a name, never a path: it must be a plain file
name with a table suffix; the stored file is `uploads/<8 hex>-<name>`, so two uploads
of one name never overwrite each other (nor a job's input while it reads it).
`uploads/` lies in the workspace, an allowed data root, and outside the folders the
server keeps for itself (api/locations.py INTERNAL), so a job created from an upload
passes the same location checks as any other.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from tabpilot.errors import DataError, TabpilotError

UPLOADS = "uploads"
MiB = 1024 * 1024
MAX_UPLOAD_MB = 100.0  # without a server's cap: serving/limits.py's default BODY_MB
SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".csv.gz", ".tsv.gz")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,118}[A-Za-z0-9]$")


class UploadError(TabpilotError):
    """An upload refused: a bad file name, an empty body, or one over the cap."""


def check_name(name: str | None) -> str:
    """The file name, or UploadError: a plain name (letters, digits, `._- `), no folder
    part, ending in a table suffix."""
    given = (name or "").strip()
    if not given:
        raise UploadError("the upload has no file name; choose a CSV or Parquet file")
    if "/" in given or "\\" in given or given in (".", ".."):
        raise UploadError(f"file name {given[:80]!r} has a folder part; send the file's name "
                          "only")
    if not _NAME.match(given) or ".." in given:
        raise UploadError(f"file name {given[:80]!r} is not allowed; use letters, digits, "
                          "'.', '_', '-' and spaces (at most 120 characters), e.g. churn.csv")
    if not given.lower().endswith(SUFFIXES):
        raise UploadError(f"file name {given!r} is not a table; upload a .csv, .tsv, "
                          ".parquet or .csv.gz file")
    return given


def upload_dir(workspace: Path) -> Path:
    folder = Path(workspace).resolve() / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def save(chunks: AsyncIterator[bytes], workspace: Path, name: str | None,
               max_bytes: int = int(MAX_UPLOAD_MB * MiB),
               declared: int | None = None) -> Path:
    """Stream `chunks` into `uploads/<hex>-<name>`; returns its path.

    `declared`: the Content-Length, refused before a byte is written when over the cap.
    """
    clean = check_name(name)
    if declared is not None and declared > max_bytes:
        raise UploadError(_too_large(declared, max_bytes))
    folder = upload_dir(workspace)
    final = folder / f"{secrets.token_hex(4)}-{clean}"
    partial = folder / f".{final.name}.part"
    written = 0
    try:
        with open(partial, "wb") as sink:
            async for chunk in chunks:
                written += len(chunk)
                if written > max_bytes:
                    raise UploadError(_too_large(written, max_bytes, cut=True))
                sink.write(chunk)
        if written == 0:
            raise DataError(f"{clean} is empty; upload a table with a header row and data rows")
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return final


def _too_large(n: int, cap: int, cut: bool = False) -> str:
    what = f"more than {cap / MiB:g} MiB" if cut else f"{n / MiB:.1f} MiB"
    return (f"the file is {what}, over this server's upload limit of {cap / MiB:g} MiB; "
            "start the server with a larger --max-body-mb, or put the file under an allowed "
            "data root (tabpilot serve --allow-root DIR) and give its path instead")
