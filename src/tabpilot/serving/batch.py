"""Batch transform: score CSV or Parquet files, or a folder of them, in bounded chunks.

Each input file gets `<output>/<file name>.out` (Autopilot's naming), written to a
temporary name and renamed when complete, so a rerun skips finished files and redoes
only the one that was interrupted. Memory is set by `chunk_rows`, not by the file size.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import queue
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tabpilot.artifacts import Model
from tabpilot.artifacts.validate import PYTHON_HINT, InputReport, check_on_bad_value
from tabpilot.data.read import DEFAULT_NA_VALUES
from tabpilot.errors import DataError
from tabpilot.serving.codec import CSV, JSONLINES, input_columns, parse_keys, predict_columns
from tabpilot.serving.forecasting import ForecastModel

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
    on_bad_value: str = "error"  # a value unreadable for its column: fail the file, or missing
    hint: str = PYTHON_HINT  # how the caller spells the opt-in, for the error message


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


def transform(model: Model, source: Path, output: Path, settings: TransformSettings,
              found: dict[str, InputReport] | None = None) -> dict[str, int]:
    """Score every input file; returns {file name: rows written} (0 for skipped files).

    Every chunk passes the model's input check (artifacts/validate.py): a value that does
    not parse for its column fails the file, naming it, the row and the column, unless
    `settings.on_bad_value` is "missing". `found`, if given, receives each scored file's
    counts (values read as missing, categories not seen in training). A forecasting
    model forecasts each file's items instead (`_forecast_files`)."""
    check_on_bad_value(settings.on_bad_value)
    if isinstance(model, ForecastModel):
        return _forecast_files(model, source, output, settings)
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
        report = InputReport()
        try:
            with open(tmp, "w", newline="", encoding="utf-8") as sink:
                done[path.name] = _score_file(sink, model, path, keys, settings, report)
        except DataError as exc:  # nothing half-written stays behind a refused file
            tmp.unlink(missing_ok=True)
            if str(path) in str(exc):
                raise
            raise type(exc)(f"{path}: {exc}") from None
        tmp.replace(target)
        if found is not None:
            found[path.name] = report
    return done


def _forecast_files(model: ForecastModel, source: Path, output: Path,
                    settings: TransformSettings) -> dict[str, int]:
    """Each file is the history of its items, read whole (an item's rows may be anywhere
    in it): the output is the forecast after each item's end, one row per item and
    period, in the same `.out` naming, atomic rename and skipping of finished files."""
    from tabpilot.data.read import read_table

    for name, given in (("InputFilter", settings.input_filter),
                        ("OutputFilter", settings.output_filter)):
        if given:
            raise DataError(f"{name} selects columns of tabular rows; a forecasting model "
                            "reads each item's whole history, leave it out")
    if settings.join_input:
        raise DataError("JoinSource=Input pairs each input row with its prediction; a "
                        "forecast has its own rows (the future periods), leave it out")
    output.mkdir(parents=True, exist_ok=True)
    done: dict[str, int] = {}
    for path in input_files(source):
        target = output / f"{path.name}.out"
        if target.exists():
            done[path.name] = 0
            continue
        tmp = target.with_name(f".{target.name}.partial")
        try:
            frame = model.forecast(read_table(path))
        except DataError as exc:
            raise type(exc)(f"{path}: {exc}") from None
        if settings.accept == JSONLINES:  # ISO timestamps, not pandas' epoch milliseconds
            when = model.predictor.request.timestamp
            frame[when] = frame[when].map(pd.Timestamp.isoformat)
        with open(tmp, "w", newline="", encoding="utf-8") as sink:
            # always a header: a forecast's columns are the job's names, not fixed keys
            _write_chunk(sink, frame, replace(settings, output_header=True), True)
        tmp.replace(target)
        done[path.name] = len(frame)
    return done


def _score_file(sink, model: Model, path: Path, keys: list[str], settings: TransformSettings,
                report: InputReport) -> int:
    """Read, score and write in a pipeline: chunk i+1 is parsed and chunk i-1 written
    while chunk i is scored, so no core waits for the others."""
    rows = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tabpilot-write") as writer:
        pending = None
        for i, chunk in enumerate(_ahead(_chunks(path, model, settings))):
            out = _score_chunk(model, chunk, keys, settings, rows + 1, report)
            if pending is not None:
                pending.result()
            pending = writer.submit(_write_chunk, sink, out, settings, i == 0)
            rows += len(out)
        if pending is not None:
            pending.result()
    return rows


_DONE = object()


def _ahead(items: Iterator[Any]) -> Iterator[Any]:
    """The items of `items`, each produced in a thread while the previous one is used."""
    slot: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                slot.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((_DONE, exc))

    thread = threading.Thread(target=produce, name="tabpilot-read", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slot.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _chunks(path: Path, model: Model, settings: TransformSettings) -> Iterator[pd.DataFrame]:
    if path.name.lower().endswith((".parquet", ".pq")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=settings.chunk_rows):
            yield batch.to_pandas()
        return
    header = _has_header(path, model) if settings.header is None else settings.header
    names = None if header else _positional_names(path, model)
    # every column is read as text, whatever a block looks like; numbers are then cast in
    # Arrow, except in a block where some value is no number: the input check names it
    kinds = model.metadata.get("input_schema") or {}
    types = {c: pa.string() for c in kinds}
    numeric = [c for c, k in kinds.items() if k == "numeric"]
    # pyarrow's block size bounds memory; rows per block follow from the chunk size
    block = max(1 << 16, min(64 << 20, settings.chunk_rows * 200))
    buffered: list[pd.DataFrame] = []
    count = 0
    try:  # opening parses the first block: its errors are the file's too
        reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(block_size=block, column_names=names),
            convert_options=pacsv.ConvertOptions(null_values=DEFAULT_NA_VALUES,
                                                 strings_can_be_null=True, column_types=types))
        for batch in reader:
            buffered.append(_numbers(batch, numeric).to_pandas())
            count += batch.num_rows
            if count >= settings.chunk_rows:
                yield pd.concat(buffered, ignore_index=True)
                buffered, count = [], 0
    except pa.ArrowInvalid as exc:
        raise DataError(f"{path}: {str(exc).splitlines()[0]}") from None
    if buffered:
        yield pd.concat(buffered, ignore_index=True)


def _numbers(batch: pa.RecordBatch, numeric: list[str]) -> pa.RecordBatch:
    """The numeric columns of a block of text columns as float64 where every value is a
    number as Arrow writes it; a column with any other value (" 12 ", "fifty") stays
    text, for the input check and the encoder's own parser."""
    names = batch.schema.names
    columns = batch.columns
    for i, name in enumerate(names):
        if name in numeric and columns[i].type == pa.string():
            try:
                columns[i] = columns[i].cast(pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
    return pa.RecordBatch.from_arrays(columns, names=names)


def _first_line(path: Path) -> list[str]:
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        return next(csv.reader([f.readline()]), [])


def _has_header(path: Path, model: Model) -> bool:
    """Whether the first line names columns: all the features, or mostly the model's
    input columns (a header that lacks some, which the input check then lists)."""
    first, inputs = _first_line(path), set(input_columns(model))
    return set(model.features) <= set(first) or \
        sum(name in inputs for name in first) * 2 > len(first) > 0


def _positional_names(path: Path, model: Model) -> list[str]:
    width = len(_first_line(path))
    inputs, features = input_columns(model), model.features
    if width == len(inputs):
        return inputs
    if width == len(features):
        return features
    raise DataError(f"{path} has {width} columns and no header; expected {len(inputs)} "
                    "(the training columns without the target, in order) or a header row")


def _score_chunk(model: Model, chunk: pd.DataFrame, keys: list[str],
                 settings: TransformSettings, first_row: int, report: InputReport
                 ) -> pd.DataFrame:
    features = select_columns(chunk, settings.input_filter) if settings.input_filter else chunk
    features, found = model.check(features, settings.on_bad_value, first_row=first_row,
                                  hint=settings.hint)
    report.add(found)
    columns = predict_columns(model, features, keys)
    pred = pd.DataFrame({k: _cells(v, settings.accept == CSV) for k, v in columns.items()})
    out = pd.concat([chunk.reset_index(drop=True), pred], axis=1) if settings.join_input else pred
    if settings.output_filter:
        out = select_columns(out, settings.output_filter)
    return out


def _write_chunk(sink, out: pd.DataFrame, settings: TransformSettings, first: bool) -> None:
    if settings.accept == JSONLINES:
        sink.write(out.to_json(orient="records", lines=True))
    else:
        header = first and settings.output_header
        text = csv_text(out, header)
        if text is None:
            out.to_csv(sink, index=False, header=header)
        else:
            sink.write(text)


_QUOTE = re.compile(r'[,"\r\n]')


def csv_text(df: pd.DataFrame, header: bool) -> str | None:
    """`df.to_csv(index=False)`'s text, several times faster, for columns of float64,
    integers, booleans and objects; None for other column types."""
    columns: list[list[str]] = []
    for name in df.columns:
        values = df[name].to_numpy()
        if values.dtype == np.float64:
            text = list(map(repr, values.tolist()))
            for i in np.flatnonzero(np.isnan(values)):
                text[i] = ""
        elif values.dtype.kind in "iub":
            text = list(map(str, values.tolist()))
        elif values.dtype.kind == "O":
            text = [_field(v) for v in values.tolist()]
        else:
            return None
        columns.append(text)
    if not columns:
        return None
    lines = list(map(",".join, zip(*columns, strict=True)))
    if header:
        lines.insert(0, ",".join(_field(c) for c in df.columns))
    if len(columns) == 1:  # a line of one empty field is written quoted, as csv does
        lines = ['""' if line == "" else line for line in lines]
    return "\n".join(lines) + "\n" if lines else ""


def _field(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT or \
            (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value)
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if _QUOTE.search(text) else text


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
