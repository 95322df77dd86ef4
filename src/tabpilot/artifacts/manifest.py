"""A model directory's file names and its manifest (sha256 and size of every file).

Paths in a manifest are relative to the model directory ("members/0/predictor.pkl" in a
composite's). Files that may be hard links shared with another model directory are never
written into: a changed file is written new beside it and renamed over it (`replace`).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
PREDICTOR = "predictor.pkl"
METADATA = "metadata.json"
MEMBERS = "members"  # a composite's folder of member model directories (composite.py)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def entry(path: Path) -> dict[str, Any]:
    """The manifest entry of one file, hashed now."""
    return {"sha256": sha256(path), "bytes": path.stat().st_size}


def read(directory: Path) -> dict[str, Any]:
    return json.loads((directory / MANIFEST).read_text())


def write(directory: Path, files: dict[str, dict[str, Any]]) -> None:
    """Write the manifest of `directory` listing `files` (sorted by path)."""
    text = json.dumps({"files": dict(sorted(files.items()))}, indent=2)
    replace(directory / MANIFEST, lambda path: path.write_text(text))


def replace(path: Path, write_to: Callable[[Path], Any]) -> None:
    """Write `path` as a new file (`write_to` fills a temporary one, renamed over `path`):
    an existing `path` may be a hard link to another model's file, which must not change."""
    # a fresh name, not mkstemp: its file would keep mode 0600, unreadable to a server
    # running as another user, where the model's other files have the umask's mode
    tmp = path.with_name(f".new-{uuid.uuid4().hex}-{path.name}")
    try:
        write_to(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
