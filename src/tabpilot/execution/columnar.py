"""A job's feature columns stored once, compactly, for trial processes to memory-map.

A table as pandas reads it from a CSV (float64 numbers, one Python string object per text
cell) costs several times what its values need, and every trial process that unpickles it
pays that again. The column store keeps each feature column in the smallest form that
gives the encoders exactly the values they would compute from the original column:

- numbers: their own numpy dtype (float64 narrowed to float32 only where that is exact);
  numbers held as text are stored as the floats `as_float` reads from them;
- categories: int32 codes into the column's distinct labels (as `as_category_strings`
  writes them), -1 where missing;
- datetimes: datetime64 as is; dates held as text, and text, as Arrow strings;
- anything else (mixed Python objects): pickled whole, loaded whole (rare).

A trial opens the store (numpy and Arrow memory-map the files, so nothing is read until
used) and takes only the rows it needs, in the order it wants them (`frame(rows)`).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tabpilot.data.schema import ColumnKind, Schema
from tabpilot.features.columns import as_category_strings, as_float, as_text

MANIFEST = "columns.json"
STRINGS = "strings.arrow"


@dataclass
class _Column:
    name: str
    storage: str  # numeric | codes | strings | pickle
    file: str | None = None
    labels: list[str] | None = None  # codes: the label of each code


def write_columns(X: pd.DataFrame, schema: Schema, folder: str | Path) -> Path:
    """Store the feature columns of `X` (those the encoders read) in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    columns: list[_Column] = []
    strings: dict[str, pa.Array] = {}
    for i, name in enumerate(schema.features):
        kind = schema.kinds[name]
        values = X[name].to_numpy()
        file = f"{i:04d}"
        if kind is ColumnKind.CATEGORICAL:
            codes, labels = _category_codes(values)
            np.save(folder / f"{file}.npy", codes)
            columns.append(_Column(name, "codes", f"{file}.npy", labels))
        elif values.dtype.kind in "fiubM" and kind is not ColumnKind.TEXT:
            np.save(folder / f"{file}.npy", _narrow(values))
            columns.append(_Column(name, "numeric", f"{file}.npy"))
        elif kind is ColumnKind.NUMERIC:
            np.save(folder / f"{file}.npy", _narrow(as_float(values)))
            columns.append(_Column(name, "numeric", f"{file}.npy"))
        elif kind is ColumnKind.TEXT or _all_strings(values):
            text = as_text(values) if kind is ColumnKind.TEXT else values
            strings[file] = pa.array(text, type=pa.large_string(), from_pandas=True)
            columns.append(_Column(name, "strings", file))
        else:
            with open(folder / f"{file}.pkl", "wb") as f:
                pickle.dump(values, f, protocol=pickle.HIGHEST_PROTOCOL)
            columns.append(_Column(name, "pickle", f"{file}.pkl"))
    if strings:
        table = pa.table(strings)
        with pa.OSFile(str(folder / STRINGS), "wb") as sink, \
                pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    manifest = {"rows": len(X), "columns": [c.__dict__ for c in columns]}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def _category_codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """int32 codes (-1: missing) into the distinct labels `as_category_strings` gives."""
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) == "string":
        # label each distinct text once, not every cell (equal texts hash alike; other
        # objects may not: 1 and True are one key to a hash table, two labels here)
        raw, distinct = pd.factorize(values, use_na_sentinel=True)
        labelled = as_category_strings(np.asarray(distinct, dtype=object))
        merged, labels = pd.factorize(labelled, use_na_sentinel=True)  # " a" and "a": one
        codes = np.where(raw < 0, -1, merged[raw] if len(merged) else raw)
    else:
        codes, labels = pd.factorize(as_category_strings(values), use_na_sentinel=True)
    return codes.astype(np.int32), [str(v) for v in labels]


def _narrow(values: np.ndarray) -> np.ndarray:
    """float64 as float32 when every value survives the round trip (as_float widens it back)."""
    if values.dtype == np.float64:
        narrow = values.astype(np.float32)
        same = (narrow.astype(np.float64) == values) | (np.isnan(values) & np.isnan(narrow))
        if same.all():
            return narrow
    return values


def _all_strings(values: np.ndarray) -> bool:
    """Text or missing only: what Arrow strings hold without changing a value."""
    if values.dtype.kind == "U":
        return True
    return values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in (
        "string", "empty")


class ColumnStore:
    """The stored columns of one table, memory-mapped; rows are read on demand."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._manifest = json.loads((self.folder / MANIFEST).read_text())
        self.n_rows: int = self._manifest["rows"]
        self.columns = [_Column(**c) for c in self._manifest["columns"]]

    def loaded(self) -> LoadedColumns:
        """The same columns read into memory: plain numpy arrays that an object store
        (the Ray executor's) holds once and hands every reader without a copy."""
        files = {}
        for name in [str(c.file) for c in self.columns if c.storage != "strings"] + (
                [STRINGS] if any(c.storage == "strings" for c in self.columns) else []):
            path = self.folder / name
            files[name] = np.load(path) if name.endswith(".npy") else np.fromfile(path, np.uint8)
        return LoadedColumns(self._manifest, files)

    def _array(self, col: _Column) -> np.ndarray:
        return np.load(self.folder / str(col.file), mmap_mode="r")

    def _pickled(self, col: _Column) -> Any:
        with open(self.folder / str(col.file), "rb") as f:
            return pickle.load(f)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def frame(self, rows: np.ndarray | None = None) -> pd.DataFrame:
        """The feature columns of `rows` (every row when None), in that order, as values
        the encoders treat exactly as the original table's."""
        strings = self._strings() if any(c.storage == "strings" for c in self.columns) else None
        data: dict[str, Any] = {}
        for col in self.columns:
            if col.storage == "strings":
                assert strings is not None
                arr = strings.column(col.file)
                arr = arr if rows is None else arr.take(pa.array(rows))
                data[col.name] = arr.to_numpy(zero_copy_only=False)
                continue
            if col.storage == "pickle":
                whole = self._pickled(col)
                data[col.name] = whole if rows is None else whole[rows]
                continue
            mapped = self._array(col)
            taken = np.array(mapped) if rows is None else mapped[rows]
            del mapped  # unmapped now: the pages read stay in the page cache, not in this process
            if col.storage == "codes":
                # code -1 (missing) takes the last entry, None
                labels = np.array([*(col.labels or []), None], dtype=object)
                data[col.name] = labels[taken]
            else:
                data[col.name] = taken
        n = self.n_rows if rows is None else len(rows)
        # one block per column, no consolidation copy
        return pd.DataFrame(data, index=pd.RangeIndex(n), copy=False)

    def _strings(self) -> pa.Table:
        with pa.memory_map(str(self.folder / STRINGS), "r") as source:
            return pa.ipc.open_file(source).read_all()


class LoadedColumns(ColumnStore):
    """A column store held in memory (`ColumnStore.loaded`): the files' contents as numpy
    arrays, read-only and shared when an object store gives them out, so trials take
    their rows from one copy per machine exactly as they would from the mapped files."""

    def __init__(self, manifest: dict[str, Any], files: dict[str, np.ndarray]) -> None:
        self.folder = Path()
        self._manifest, self._files = manifest, files
        self.n_rows = manifest["rows"]
        self.columns = [_Column(**c) for c in manifest["columns"]]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._files.values())

    def _array(self, col: _Column) -> np.ndarray:
        return self._files[str(col.file)]

    def _pickled(self, col: _Column) -> Any:
        return pickle.loads(self._files[str(col.file)].tobytes())

    def _strings(self) -> pa.Table:
        buffer = pa.py_buffer(self._files[STRINGS])  # no copy: Arrow reads the array's bytes
        return pa.ipc.open_file(pa.BufferReader(buffer)).read_all()
