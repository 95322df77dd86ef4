"""Ground truth for model-quality monitoring, in Model Monitor's layout.

Labels arrive after the predictions they judge, as JSON lines under
`<workspace>/ground-truth/<endpoint>/YYYY/MM/DD/HH/<anything>.jsonl` (the hour the labels
were collected), one record a line:

    {"groundTruthData": {"data": "yes", "encoding": "CSV"},
     "eventMetadata": {"eventId": "<the capture's inferenceId>"}, "eventVersion": "0"}

A record names one captured row. A request of one row is named by its inference id; a
request of k > 1 rows (a CSV body of k lines, {"instances": [...]}) has one id per row,
`<inferenceId>:<i>` for i = 0..k-1 (`capture.row_ids`), because a label judges a row, not
a request. A record for the request's own id whose data holds k CSV lines labels its k
rows at once.

`write_ground_truth` turns a table of (inference id, label) into such a file, written
whole or not at all; the review queue writes the same records.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot.errors import DataError, NotFoundError, shown

FOLDER = "ground-truth"
_FIX = ('each line must be {"groundTruthData": {"data": "<label>", "encoding": "CSV"}, '
        '"eventMetadata": {"eventId": "<inference id>"}, "eventVersion": "0"}')


def ground_truth_folder(endpoint: str, workspace: Path | None) -> Path:
    """`<workspace>/ground-truth/<endpoint>`, whether it exists or not."""
    from tabpilot import names
    from tabpilot.config import workspace_path

    names.check(endpoint, "endpoint")
    return workspace_path(workspace) / FOLDER / endpoint


def read_ground_truth(folder: Path, start: datetime | None = None,
                      end: datetime | None = None) -> dict[str, str]:
    """{row id: label as text} of the files whose hour folder overlaps [start, end) (files
    outside the hour layout are always read). A later record for the same id replaces an
    earlier one (files in path order, lines in file order): a corrected label wins."""
    labels: dict[str, str] = {}
    if not folder.is_dir():
        return labels
    for path in sorted(folder.rglob("*.jsonl")):
        if not _hour_overlaps(folder, path, start, end):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DataError(f"ground-truth file {path} is not UTF-8 text; {_FIX}") from None
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                labels.update(_record(line, f"ground-truth file {path} line {number}"))
    return labels


def _record(line: str, where: str) -> dict[str, str]:
    try:
        record = json.loads(line)
        data = record["groundTruthData"]["data"]
        encoding = str(record["groundTruthData"].get("encoding", "CSV")).upper()
        event = record["eventMetadata"]["eventId"]
    except json.JSONDecodeError:
        raise DataError(f"{where} is not JSON; {_FIX}") from None
    except (KeyError, TypeError, AttributeError):
        raise DataError(f"{where} lacks groundTruthData.data or eventMetadata.eventId; "
                        f"{_FIX}") from None
    if not isinstance(event, str) or not event.strip():
        raise DataError(f"{where}: eventMetadata.eventId must be the inference id as text, "
                        f"got {shown(event)}")
    if encoding == "JSON":
        values = data if isinstance(data, list) else [data]
    elif encoding == "CSV":
        if not isinstance(data, str):
            raise DataError(f"{where}: groundTruthData.data must be the label as text, got "
                            f"{shown(data)}")
        values = [",".join(row) for row in csv.reader(io.StringIO(data, newline="")) if row]
    else:
        raise DataError(f"{where}: groundTruthData.encoding {encoding!r} is not CSV or JSON")
    if not values or any(v is None or str(v).strip() == "" for v in values):
        raise DataError(f"{where}: the label of {event!r} is empty")
    if len(values) == 1:
        return {event: label_text(values[0])}
    return {f"{event}:{i}": label_text(v) for i, v in enumerate(values)}


def label_text(value: Any) -> str:
    """A label as comparable text: 1, 1.0 and "1" are one label; true and True one."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text.lower() if text.lower() in ("true", "false") else text
    return str(int(number)) if number.is_integer() and abs(number) < 2**53 else text


def _hour_overlaps(folder: Path, path: Path, start: datetime | None, end: datetime | None
                   ) -> bool:
    parts = path.relative_to(folder).parts[:-1][-4:]
    try:
        hour = datetime(*(int(p) for p in parts), tzinfo=UTC)  # type: ignore[misc]
    except (TypeError, ValueError):
        return True
    return not ((start and hour + timedelta(hours=1) <= start) or (end and hour >= end))


def write_ground_truth(endpoint: str, table: str, id_column: str, label_column: str, *,
                       workspace: Path | None, now: datetime) -> tuple[Path, int]:
    """Write a table's (inference id, label) pairs as one ground-truth file in the hour
    folder of `now`; (the file, how many records)."""
    from tabpilot.data.read import read_table

    folder = ground_truth_folder(endpoint, workspace)
    _check_endpoint(endpoint, folder.parent.parent)
    df = read_table(table, copy=False)
    for option, column in (("--id-column", id_column), ("--label-column", label_column)):
        if column not in df.columns:
            raise DataError(f"{option} {column!r} is not a column of {table}; its columns: "
                            f"{shown(', '.join(map(str, df.columns)))}")
    if id_column == label_column:
        raise DataError("--id-column and --label-column name the same column")
    records = _records(df[id_column], df[label_column], table)
    target = folder / now.strftime("%Y/%m/%d/%H") / f"{Path(table).name.split('.')[0]}-" \
        f"{uuid.uuid4().hex[:8]}.jsonl"
    part = target.with_name(target.name + ".part")  # not *.jsonl: readers never see it
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        part.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        os.replace(part, target)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise DataError(f"cannot write ground truth to {target.parent}: "
                        f"{exc.strerror or exc}") from None
    return target, len(records)


def _check_endpoint(endpoint: str, workspace: Path) -> None:
    """Ground truth for a name that is neither an endpoint nor a capture folder is a typo."""
    from tabpilot.store import Store

    if (workspace / "capture" / endpoint).is_dir():
        return
    if (workspace / "tabpilot.db").is_file():
        try:
            Store.for_workspace(workspace, create=False).get_endpoint(endpoint)
            return
        except NotFoundError:
            pass
    raise NotFoundError(f"no endpoint named {endpoint!r} and no captured data for it; "
                        "`tabpilot endpoints` lists them")


def _records(ids: pd.Series, labels: pd.Series, table: str) -> list[dict[str, Any]]:
    id_text = ids.astype(object).where(ids.notna(), None)
    id_text = id_text.map(lambda v: None if v is None or str(v).strip() == "" else str(v))
    bad = [i + 2 for i, v in enumerate(id_text) if v is None]  # + header, 1-based
    if bad:
        raise DataError(f"{table}: row(s) {_rows(bad)} have no inference id")
    duplicated = id_text[id_text.duplicated(keep=False)]
    if len(duplicated):
        raise DataError(f"{table}: inference id {duplicated.iloc[0]!r} appears "
                        f"{int((id_text == duplicated.iloc[0]).sum())} times; give one label "
                        "per prediction")
    missing = [i + 2 for i, v in enumerate(labels) if pd.isna(v) or str(v).strip() == ""]
    if missing:
        raise DataError(f"{table}: row(s) {_rows(missing)} have no label; drop them or label "
                        "them")
    return [{"groundTruthData": {"data": _csv_field(label_text(label)), "encoding": "CSV"},
             "eventMetadata": {"eventId": event}, "eventVersion": "0"}
            for event, label in zip(id_text, labels, strict=True)]


def _csv_field(text: str) -> str:
    """The label as one CSV field: quoted when it holds a comma, a quote or a line break,
    so that it reads back as one label, not several."""
    if not any(c in text for c in ',"\r\n'):
        return text
    return '"' + text.replace('"', '""') + '"'


def _rows(numbers: list[int]) -> str:
    head = ", ".join(map(str, numbers[:5]))
    return head + (f" and {len(numbers) - 5} more" if len(numbers) > 5 else "")
