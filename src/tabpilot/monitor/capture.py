"""An endpoint's captured requests read back as a table, over a time window.

`serving/capture.py` writes one JSON line per sampled request under
`<capture root>/<endpoint>/[<variant>/]YYYY/MM/DD/HH.jsonl`, the request body as sent
(CSV, JSON or JSON lines; base64 when not UTF-8). This module turns the bodies back into
rows: a CSV with `header=present` in its content type names its columns; a CSV without a
header, or JSON rows given as lists, is in the model's input order, which is the
baseline's feature order (values beyond it become `_c<i>`, as Model Monitor names
header-less columns). Every value stays text or as JSON gave it; the checks read numbers
from it the way Model Monitor does.

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
    """(the rows of the requests captured in [start, end), how many requests)."""
    rows: list[dict[str, Any]] = []
    requests = 0
    for path in sorted(folder.rglob("*.jsonl")):
        if not _hour_overlaps(folder, path, start, end):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                when = _time(record["eventMetadata"]["inferenceTime"])
                payload = record["captureData"]["endpointInput"]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise DataError(f"{path} line {number} is not a capture record") from None
            if (start and when < start) or (end and when >= end):
                continue
            requests += 1
            rows.extend(_rows(payload, columns, f"{path} line {number}"))
    return pd.DataFrame(rows, dtype=object), requests


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
    data, encoding = payload.get("data", ""), payload.get("encoding", "CSV")
    content_type = str(payload.get("observedContentType") or "text/csv").lower()
    try:
        text = base64.b64decode(data).decode("utf-8") if encoding == "BASE64" else data
    except (ValueError, UnicodeDecodeError):
        raise DataError(f"{where}: the captured body is not UTF-8 text") from None
    if "csv" in content_type:
        lines = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
        if "header=present" in content_type.replace(" ", "") and lines:
            names, lines = lines[0], lines[1:]
            return [dict(zip(names, _blanks(r), strict=False)) for r in lines]
        return [_positional(_blanks(r), columns) for r in lines]
    try:
        if "jsonlines" in content_type:
            items: Any = [json.loads(x) for x in text.splitlines() if x.strip()]
        else:
            items = json.loads(text)
    except json.JSONDecodeError:
        raise DataError(f"{where}: the captured body is not valid JSON") from None
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


def _blanks(row: list[str]) -> list[str | None]:
    return [None if v.strip() == "" else v for v in row]


def _positional(values: list[Any], columns: list[str]) -> dict[str, Any]:
    return {columns[i] if i < len(columns) else f"_c{i}": _scalar(v)
            for i, v in enumerate(values)}


def _scalar(value: Any) -> Any:
    """A JSON list or object inside a row is one value, kept as its JSON text."""
    return json.dumps(value) if isinstance(value, list | dict) else value
