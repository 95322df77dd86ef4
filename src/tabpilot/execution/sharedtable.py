"""The encoded table, built once per job and style, memory-mapped by every trial that needs it.

Every trial of a style (native, ordinal, onehot) that trains on the split's own rows (no
subsample, no refit) fits the same encoder on the same rows and encodes the same rows
into the same matrix: on a large table that matrix is the biggest thing a trial holds,
and two trials at once held two copies. The first such trial of a job builds it and
writes it beside the job's column store (`SharedEncodings`); the others, and every later
one, wait for it under a file lock and map the file read-only: its pages sit once in
the page cache, shared by every trial that maps them, and the kernel can drop them under
pressure (a file on disk, not anonymous memory). A trial killed while building leaves
nothing half written (the file appears by rename) and releases the lock by dying.

`Reaper` removes a folder when the process that made it ends, however it ends: a job
killed with SIGKILL leaves no column store or encoded matrix behind in the temp folder.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FOLDER = "encoded"  # beside the column store, in the executor's context folder

# the reaper: waits for its stdin to close (its parent exited or was killed), then
# removes the folder; -S: no site imports, so it costs a few MB and starts in ms
_REAPER = ("import shutil, sys\n"
           "sys.stdin.buffer.read()\n"
           "shutil.rmtree(sys.argv[1], ignore_errors=True)\n")


class SharedEncodings:
    """Encoded matrices of one job (one per style), in `folder`, shared by its trials."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def beside(cls, table: Any) -> SharedEncodings | None:
        """The job's shared encodings when its table is a column store folder that has
        the folder for them (the local executor makes it); else None (Ray's table is in
        its object store, and its nodes share no folder)."""
        if not isinstance(table, str | Path):
            return None
        folder = Path(table).parent / FOLDER
        return cls(folder) if folder.is_dir() else None

    def get(self, key: str, build: Callable[[], tuple[Any, Any]]) -> tuple[Any, Any]:
        """The encoder and the encoded matrix stored under `key`, read-only and memory-
        mapped; `build()` makes them when no trial has yet (one trial at a time builds).
        A matrix that cannot be mapped (sparse, as text columns give, or of Python
        objects) is not shared: a marker says so and each trial then builds its own,
        without waiting on the others."""
        matrix, fitted = self.folder / f"{key}.npy", self.folder / f"{key}.encoder.pkl"
        unshared = self.folder / f"{key}.unshared"
        if unshared.exists():
            return build()
        with open(self.folder / f"{key}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when this trial ends, or dies
            try:
                if not matrix.exists() and not unshared.exists():
                    encoder, encoded = build()
                    if not mappable(encoded):
                        unshared.touch()
                        return encoder, encoded
                    _write(fitted, lambda f: pickle.dump(encoder, f, pickle.HIGHEST_PROTOCOL))
                    _write(matrix, lambda f: np.save(f, encoded, allow_pickle=False))
                    del encoded  # the mapped file replaces it
                if matrix.exists():
                    with open(fitted, "rb") as f:
                        encoder = pickle.load(f)
                    return encoder, np.load(matrix, mmap_mode="r", allow_pickle=False)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return build()  # another trial found it cannot be shared


def mappable(encoded: Any) -> bool:
    """Whether `encoded` can be written as one .npy file and mapped back: a dense array
    of plain numbers."""
    return isinstance(encoded, np.ndarray) and not encoded.dtype.hasobject


def _write(path: Path, write: Callable[[Any], None]) -> None:
    """Write `path` whole or not at all: readers never see a half-written file."""
    partial = path.with_name(path.name + f".{os.getpid()}.partial")
    with open(partial, "wb") as f:
        write(f)
    os.replace(partial, path)


class Reaper:
    """A small process that removes `folder` once this process has ended, however it
    ended (its end of a pipe closes; the reaper reads end-of-file). It runs in a session
    of its own, so the signals that stop the job (Ctrl-C, a kill of its process group)
    do not stop it first."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = str(folder)
        self._process = subprocess.Popen(
            [sys.executable, "-S", "-c", _REAPER, self.folder], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self._process.pid

    def release(self) -> None:
        """The folder is removed now (by the reaper) and the reaper exits."""
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # it removes the folder on its own time
            pass
