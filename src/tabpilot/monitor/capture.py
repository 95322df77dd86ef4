"""An endpoint's captured requests read back as a table, over a time window.

`serving/capture.py` writes one JSON line per sampled request under
`<capture root>/<endpoint>/[<variant>/]YYYY/MM/DD/HH.jsonl`, the request body as sent
(CSV, JSON or JSON lines; base64 when not UTF-8). This module turns the bodies back into
rows: a CSV with `header=present` in its content type names its columns; a CSV without a
header, or JSON rows given as lists, is in the model's input order, which is the
baseline's feature order (values beyond it become `_c<i>`, as Model Monitor names
header-less columns). Every value stays text or as JSON gave it; the checks read numbers
from it the way Model Monitor does. `read_predictions` reads the responses the same way,
one row per predicted row with its id (`row_ids`), for model-quality monitoring.

Times: `--start`/`--end` take ISO 8601 (`2026-12-03T10:00:00Z`; no zone means UTC),
`NOW`, `NOW-2H` / `NOW-30M` / `NOW-1D` / `NOW-90S`, or SageMaker's offsets relative to
now, `-PT1H`, `-PT30M`, `-P1D`, as a monitoring schedule's DataAnalysisStartTime gives
them.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot.errors import ConfigError, DataError, NotFoundError

_NOW = re.compile(r"^NOW(?:\s*([+-])\s*(\d+(?:\.\d+)?)\s*([SMHD]))?$", re.IGNORECASE)
_ISO_OFFSET = re.compile(r"^-P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$",
                         re.IGNORECASE)
_UNITS = {"S": "seconds", "M": "minutes", "H": "hours", "D": "days"}
TIME_HELP = "ISO 8601 (2026-12-03T10:00:00Z), NOW, NOW-2H (S, M, H, D) or -PT1H / -P1D"


def parse_time(text: str, now: datetime | None = None, what: str = "time") -> datetime:
    now = now or datetime.now(UTC)
    given = text.strip()
    match = _NOW.match(given)
    if match:
        if not match.group(1):
            return now
        delta = timedelta(**{_UNITS[match.group(3).upper()]: float(match.group(2))})
        return now + delta if match.group(1) == "+" else now - delta
    match = _ISO_OFFSET.match(given)
    if match and given.upper() not in ("-P", "-PT") and not given.upper().endswith("T"):
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return now - timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    try:
        moment = datetime.fromisoformat(given.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{what} {given!r} is not a time; use {TIME_HELP}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def capture_folder(endpoint: str, workspace: Path | None) -> Path:
    """Where the endpoint's captures are: its own capture folder, else the workspace's
    `capture/<endpoint>`. An endpoint deleted since keeps its captures readable."""
    from tabpilot import names
    from tabpilot.config import workspace_path
    from tabpilot.store import Store

    names.check(endpoint, "endpoint")
    ws = workspace_path(workspace)
    folder = ws / "capture" / endpoint
    if (ws / "tabpilot.db").is_file():
        try:
            row = Store.for_workspace(ws, create=False).get_endpoint(endpoint)
            folder = Path(row.capture_dir) / endpoint if row.capture_dir else folder
            if not folder.is_dir():
                raise DataError(f"endpoint {endpoint!r} has captured nothing yet (no "
                                f"{folder}); deploy it with --capture-percent and send requests")
            return folder
        except NotFoundError:
            pass
    if not folder.is_dir():
        raise NotFoundError(f"no endpoint named {endpoint!r} and no captured data at {folder}; "
                            "`tabpilot endpoints` lists them")
    return folder


def read_capture(folder: Path, columns: list[str], start: datetime | None = None,
                 end: datetime | None = None) -> tuple[pd.DataFrame, int]:
    """(the rows of the requests captured in [start, end), how many requests).

    Header-less CSV bodies, what a model is usually sent, are parsed in bulk: a run of
    consecutive ones is joined and read by pyarrow's CSV reader at once (a million rows
    in seconds, not a dict per row); a run whose rows differ in width, and every other
    body, is read request by request. Rows keep the order they were captured in."""
    parts: list[pd.DataFrame] = []
    rows: list[dict[str, Any]] = []
    run: list[tuple[str, str]] = []  # (where, text) of consecutive header-less CSV bodies
    requests = 0

    def flush_run() -> None:
        if run:
            if rows:
                parts.append(pd.DataFrame(rows, dtype=object))
                rows.clear()
            parts.append(_bulk_csv(run, columns))
            run.clear()

    for where, record in records(folder, start, end):
        requests += 1
        payload = record["captureData"]["endpointInput"]
        kind = str(payload.get("observedContentType") or "text/csv").lower().replace(" ", "")
        if "csv" in kind and "header=present" not in kind:
            run.append((where, _text(payload, where)))
            continue
        flush_run()
        rows.extend(_rows(payload, columns, where))
    flush_run()
    if rows:
        parts.append(pd.DataFrame(rows, dtype=object))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(dtype=object), requests
    return (parts[0] if len(parts) == 1 else
            pd.concat(parts, ignore_index=True, sort=False).astype(object)), requests


def _bulk_csv(run: list[tuple[str, str]], columns: list[str]) -> pd.DataFrame:
    """Header-less CSV bodies as one frame of text (None where a field is empty), read
    at once; request by request when their rows are not all of one width."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    text = "".join(t if t.endswith("\n") else t + "\n" for _, t in run if t.strip())
    if not text:
        return pd.DataFrame(dtype=object)
    try:
        table = pacsv.read_csv(
            pa.py_buffer(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True,
                                           block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values='"' in text),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(_width(text))},
                strings_can_be_null=True, null_values=[""]))
    except (pa.ArrowInvalid, ValueError):  # rows of different widths: the careful way
        return pd.DataFrame([row for where, t in run
                             for row in _rows({"data": t}, columns, where)], dtype=object)
    none = pa.scalar(None, pa.string())  # a field of spaces is missing too, as "" is
    frame = pa.table([pc.if_else(pc.utf8_is_space(c), none, c) for c in table.columns],
                     names=table.column_names).to_pandas()
    frame.columns = [columns[i] if i < len(columns) else f"_c{i}"
                     for i in range(len(frame.columns))]
    return frame


def _width(text: str) -> int:
    """Fields in the first row (a quoted field may hold a line break)."""
    head = text[:1 << 20]  # the first row is in there, however long its quoted fields
    return max(1, len(next(csv.reader(io.StringIO(head, newline="")), [])))


def records(folder: Path, start: datetime | None = None, end: datetime | None = None
            ) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, record) of every capture record in [start, end), files in time order."""
    for path in sorted(folder.rglob("*.jsonl")):
        if not _hour_overlaps(folder, path, start, end):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                when = _time(record["eventMetadata"]["inferenceTime"])
                record["captureData"]["endpointInput"]  # noqa: B018  (present, or not a record)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise DataError(f"{path} line {number} is not a capture record") from None
            if (start and when < start) or (end and when >= end):
                continue
            yield f"{path} line {number}", record


def read_predictions(folder: Path, start: datetime | None = None,
                     end: datetime | None = None) -> tuple[pd.DataFrame, int]:
    """(one row per prediction the endpoint answered in [start, end), how many requests).

    Columns: `inference_id` (the row's id: the request's inference id, `<id>:<i>` for
    the i-th row of a request of several, as `row_ids` says), `inference_time`, and the
    response's fields: a JSON response's keys (`predicted_label`, `probability`, ...), a
    CSV response's columns by position, "0", "1", ...
    """
    rows: list[dict[str, Any]] = []
    requests = 0
    for where, record in records(folder, start, end):
        output = record["captureData"].get("endpointOutput")
        if not output or not output.get("data"):
            continue  # an error answer, or a capture without responses
        requests += 1
        meta = record["eventMetadata"]
        answers = _answers(output, where)
        ids = row_ids(str(meta.get("inferenceId") or meta.get("eventId")), len(answers))
        for row_id, answer in zip(ids, answers, strict=True):
            answer["inference_id"], answer["inference_time"] = row_id, meta["inferenceTime"]
            rows.append(answer)
    return pd.DataFrame(rows, dtype=object), requests


def row_ids(inference_id: str, rows: int) -> list[str]:
    """The ids of a request's rows: its inference id for one row; `<id>:<i>` for several."""
    return [inference_id] if rows == 1 else [f"{inference_id}:{i}" for i in range(rows)]


def _answers(payload: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """A response body as one dict per predicted row."""
    text = _text(payload, where)
    content_type = str(payload.get("observedContentType") or "text/csv").lower()
    if "csv" in content_type:
        return [{str(i): v for i, v in enumerate(_blanks(r))}
                for r in csv.reader(io.StringIO(text, newline="")) if r]
    items = _json_items(text, content_type, f"{where}: the captured response")
    if isinstance(items, dict):
        items = items.get("predictions", [items])
    if not isinstance(items, list):
        items = [items]
    return [{str(k): v for k, v in item.items()} if isinstance(item, dict)
            else {str(i): v for i, v in enumerate(item)} if isinstance(item, list)
            else {"0": item} for item in items]


def _json_items(text: str, content_type: str, what: str) -> Any:
    """A JSON or JSON lines body (by its content type) parsed; `what` names it in the error."""
    try:
        if "jsonlines" in content_type:
            return [json.loads(x) for x in text.splitlines() if x.strip()]
        return json.loads(text)
    except json.JSONDecodeError:
        raise DataError(f"{what} is not valid JSON") from None


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _hour_overlaps(folder: Path, path: Path, start: datetime | None, end: datetime | None
                   ) -> bool:
    parts = path.relative_to(folder).with_suffix("").parts[-4:]
    try:
        hour = datetime(*(int(p) for p in parts), tzinfo=UTC)  # type: ignore[misc]
    except (TypeError, ValueError):
        return True  # not laid out by hour: read every record, filter by its time
    return not ((start and hour + timedelta(hours=1) <= start) or (end and hour >= end))


def _rows(payload: dict[str, Any], columns: list[str], where: str) -> list[dict[str, Any]]:
    text = _text(payload, where)
    content_type = str(payload.get("observedContentType") or "text/csv").lower()
    if "csv" in content_type:
        lines = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
        if "header=present" in content_type.replace(" ", "") and lines:
            names, lines = lines[0], lines[1:]
            return [dict(zip(names, _blanks(r), strict=False)) for r in lines]
        return [_positional(_blanks(r), columns) for r in lines]
    items = _json_items(text, content_type, f"{where}: the captured body")
    if isinstance(items, dict):
        items = items.get("instances", [items])
    if not isinstance(items, list):
        raise DataError(f"{where}: the captured JSON holds no rows")
    rows = []
    for item in items:
        if isinstance(item, dict):
            rows.append({str(k): _scalar(v) for k, v in item.items()})
        elif isinstance(item, list):
            rows.append(_positional(item, columns))
        else:
            rows.append(_positional([item], columns))
    return rows


def _text(payload: dict[str, Any], where: str) -> str:
    data, encoding = payload.get("data", ""), payload.get("encoding", "CSV")
    try:
        return base64.b64decode(data).decode("utf-8") if encoding == "BASE64" else data
    except (ValueError, UnicodeDecodeError):
        raise DataError(f"{where}: the captured body is not UTF-8 text") from None


def _blanks(row: list[str]) -> list[str | None]:
    return [None if v.strip() == "" else v for v in row]


def _positional(values: list[Any], columns: list[str]) -> dict[str, Any]:
    return {columns[i] if i < len(columns) else f"_c{i}": _scalar(v)
            for i, v in enumerate(values)}


def _scalar(value: Any) -> Any:
    """A JSON list or object inside a row is one value, kept as its JSON text."""
    return json.dumps(value) if isinstance(value, list | dict) else value
