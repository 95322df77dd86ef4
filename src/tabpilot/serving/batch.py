"""Batch transform: score CSV or Parquet files, or a folder of them, in bounded chunks.

Each input file gets `<output>/<file name>.out` (Autopilot's naming), written to a
temporary name and renamed when complete, so a rerun skips finished files and redoes
only the one that was interrupted. Memory is set by `chunk_rows`, not by the file size.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tabpilot.artifacts import Model
from tabpilot.data.read import DEFAULT_NA_VALUES
from tabpilot.errors import DataError
from tabpilot.serving.codec import CSV, JSONLINES, input_columns, parse_keys, predict_columns

log = logging.getLogger("tabpilot.serving.batch")
SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq", ".tsv")


@dataclass
class TransformSettings:
    chunk_rows: int = 50_000
    accept: str = CSV
    output_keys: str | None = None
    input_filter: str | None = None  # JSONPath subset over columns, e.g. "$[1:]"
    output_filter: str | None = None  # applied to the joined row, e.g. "$[0,-1]"
    join_input: bool = False  # Autopilot's JoinSource=Input
    header: bool | None = None  # CSV input with a header row; None: detect
    output_header: bool = True  # CSV output starts with the column names (SageMaker's: no)


def input_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file()
                       and p.name.lower().endswith(SUFFIXES))
        if files:
            return files
        raise DataError(f"{source} holds no CSV or Parquet files")
    raise DataError(f"{source} does not exist; give a file or a folder of CSV/Parquet files")


def transform(model: Model, source: Path, output: Path, settings: TransformSettings
              ) -> dict[str, int]:
    """Score every input file; returns {file name: rows written} (0 for skipped files)."""
    keys = parse_keys(settings.output_keys, model)
    output.mkdir(parents=True, exist_ok=True)
    done: dict[str, int] = {}
    for path in input_files(source):
        target = output / f"{path.name}.out"
        if target.exists():
            log.info("skipping %s: %s exists", path, target)
            done[path.name] = 0
            continue
        tmp = target.with_name(f".{target.name}.partial")
        rows = 0
        with open(tmp, "w", newline="", encoding="utf-8") as sink:
            for i, chunk in enumerate(_chunks(path, model, settings)):
                rows += _write_chunk(sink, model, chunk, keys, settings, first=i == 0)
        tmp.replace(target)
        done[path.name] = rows
    return done


def _chunks(path: Path, model: Model, settings: TransformSettings) -> Iterator[pd.DataFrame]:
    if path.name.lower().endswith((".parquet", ".pq")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=settings.chunk_rows):
            yield batch.to_pandas()
        return
    header = _has_header(path, model) if settings.header is None else settings.header
    names = None if header else _positional_names(path, model)
    # numbers parse in Arrow; every other column stays text, whatever a block looks like
    kinds = model.metadata.get("input_schema") or {}
    types = {c: pa.float64() if k == "numeric" else pa.string() for c, k in kinds.items()}
    # pyarrow's block size bounds memory; rows per block follow from the chunk size
    block = max(1 << 16, min(64 << 20, settings.chunk_rows * 200))
    reader = pacsv.open_csv(
        path, read_options=pacsv.ReadOptions(block_size=block, column_names=names),
        convert_options=pacsv.ConvertOptions(null_values=DEFAULT_NA_VALUES,
                                             strings_can_be_null=True, column_types=types))
    buffered: list[pd.DataFrame] = []
    count = 0
    try:
        for batch in reader:
            buffered.append(batch.to_pandas())
            count += batch.num_rows
            if count >= settings.chunk_rows:
                yield pd.concat(buffered, ignore_index=True)
                buffered, count = [], 0
    except pa.ArrowInvalid as exc:
        raise DataError(f"{path}: {str(exc).splitlines()[0]}") from None
    if buffered:
        yield pd.concat(buffered, ignore_index=True)


def _first_line(path: Path) -> list[str]:
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        return next(csv.reader([f.readline()]), [])


def _has_header(path: Path, model: Model) -> bool:
    return set(model.features) <= set(_first_line(path))


def _positional_names(path: Path, model: Model) -> list[str]:
    width = len(_first_line(path))
    inputs, features = input_columns(model), model.features
    if width == len(inputs):
        return inputs
    if width == len(features):
        return features
    raise DataError(f"{path} has {width} columns and no header; expected {len(inputs)} "
                    "(the training columns without the target, in order) or a header row")


def _write_chunk(sink, model: Model, chunk: pd.DataFrame, keys: list[str],
                 settings: TransformSettings, first: bool) -> int:
    features = select_columns(chunk, settings.input_filter) if settings.input_filter else chunk
    columns = predict_columns(model, features, keys)
    pred = pd.DataFrame({k: _cells(v, settings.accept == CSV) for k, v in columns.items()})
    out = pd.concat([chunk.reset_index(drop=True), pred], axis=1) if settings.join_input else pred
    if settings.output_filter:
        out = select_columns(out, settings.output_filter)
    if settings.accept == JSONLINES:
        sink.write(out.to_json(orient="records", lines=True))
    else:
        out.to_csv(sink, index=False, header=first and settings.output_header)
    return len(out)


def _cells(values: Any, as_text: bool) -> Any:
    """A column of the output: lists (probabilities, labels) as JSON text in CSV."""
    if getattr(values, "ndim", 1) == 1:
        return values
    rows = values.tolist()
    return [json.dumps(r) for r in rows] if as_text else rows


_INDEXES = re.compile(r"^\$\[(.*)\]$")


def select_columns(df: pd.DataFrame, path: str) -> pd.DataFrame:
    """A JSONPath subset over columns: $, $[i], $[i,j,-1], $[a:b], $['name','other']."""
    spec = path.strip()
    if spec == "$":
        return df
    match = _INDEXES.match(spec)
    if not match:
        raise DataError(f"unsupported filter {path!r}; use $[i], $[i,j], $[a:b] or "
                        "$['column', ...]")
    inner = match.group(1).strip()
    try:
        if ":" in inner and not inner.startswith(("'", '"')):
            a, b = (int(x) if x.strip() else None for x in inner.split(":", 1))
            return df.iloc[:, slice(a, b)]
        parts = [p.strip() for p in inner.split(",")]
        if all(p[:1] in "'\"" for p in parts):
            return df[[p.strip("'\"") for p in parts]]
        return df.iloc[:, [int(p) for p in parts]]
    except (ValueError, IndexError, KeyError) as exc:
        raise DataError(f"filter {path!r} does not fit the data: {exc}") from None
