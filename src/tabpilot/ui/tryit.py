"""The endpoint page's "Try it" and "Latest captured requests".

A try-it request is an ordinary prediction: the endpoint's loaded model (the server's
`EndpointRegistry`), in the endpoint's own lane, through `serving.app.invoke` — the
function `/endpoints/{name}/invocations` calls — so it is checked, captured and counted in
the metrics exactly like a boto3 call. The sample row prefilled in the form is a row of
the job's own validation sample (its columns in the model's input order, target left out),
so "Send" works at once and shows what the model expects.
"""

from __future__ import annotations

import csv
import io
import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabpilot.errors import NotFoundError

if TYPE_CHECKING:
    from tabpilot.api.context import ApiContext
    from tabpilot.serving.app import Live

ACCEPTS = ("application/json", "text/csv", "application/jsonlines")
CAPTURES_SHOWN = 10


@dataclass
class Answer:
    status: int
    content_type: str
    body: str
    inference_id: str | None

    @property
    def shown(self) -> str:
        """The body as people read it: JSON indented, anything else as sent."""
        if "json" in self.content_type and "jsonlines" not in self.content_type:
            try:
                return json.dumps(json.loads(self.body), indent=2)
            except ValueError:
                return self.body
        return self.body

    @property
    def ok(self) -> bool:
        return self.status < 400


def live_model(ctx: ApiContext, name: str) -> Live:
    registry = ctx.registry
    live = None if registry is None else (registry.loaded(name) or registry.get(name))
    if live is None:
        failure = registry.failures.get(name) if registry is not None else None
        why = f": {failure[1]}" if failure else "; `tabpilot endpoints` lists them"
        raise NotFoundError(f"endpoint {name!r} is not being served{why}")
    return live


def send(live: Live, body: bytes, content_type: str, accept: str) -> Answer:
    """One prediction, as /endpoints/{name}/invocations makes it (call it in the lane)."""
    from tabpilot.serving.app import invoke
    from tabpilot.serving.codec import INFERENCE_ID_HEADER

    response = invoke(live, body, content_type, accept, None)
    return Answer(response.status_code, response.media_type or "",
                  bytes(response.body).decode("utf-8", "replace"),
                  response.headers.get(INFERENCE_ID_HEADER))


def sample_row(ctx: ApiContext, job: str | None, columns: list[str]) -> str:
    """A CSV line (no header) of `columns` from the job's validation sample; a line of
    empty fields when there is none."""
    values = [""] * len(columns)
    if job:
        path = Path(ctx.store.get_job(job).job_dir) / "validation_sample.parquet" \
            if ctx.store.job_exists(job) else None
        if path is not None and path.is_file():
            import pyarrow.parquet as pq

            present = [c for c in columns if c in pq.read_schema(path).names]
            frame = pq.read_table(path, columns=present).slice(0, 1).to_pandas()
            if len(frame):
                first = frame.iloc[0]
                values = ["" if c not in frame or _missing(first[c]) else str(first[c])
                          for c in columns]
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(values)
    return out.getvalue()


def _missing(value: Any) -> bool:
    try:
        return value is None or value != value  # NaN
    except (TypeError, ValueError):
        return False


@dataclass
class Captured:
    time: str
    inference_id: str | None
    request: str
    response: str


def latest_captures(folder: Path, limit: int = CAPTURES_SHOWN) -> list[Captured]:
    """The newest `limit` captured requests under an endpoint's capture folder, newest
    first. Only the newest hour files are read (they are named by the hour)."""
    if not folder.is_dir():
        return []
    kept: deque[Captured] = deque(maxlen=limit)
    files = sorted(folder.rglob("*.jsonl"))
    # the newest files first until enough records: each hour file is read whole
    chosen: list[Path] = []
    count = 0
    for path in reversed(files):
        chosen.append(path)
        count += sum(1 for line in path.open(encoding="utf-8") if line.strip())
        if count >= limit:
            break
    for path in reversed(chosen):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                data, meta = record["captureData"], record["eventMetadata"]
            except (ValueError, KeyError, TypeError):
                continue  # a line being written, or not a record: the page shows the rest
            kept.append(Captured(meta.get("inferenceTime", ""), meta.get("inferenceId"),
                                 _text(data.get("endpointInput")),
                                 _text(data.get("endpointOutput"))))
    return list(reversed(kept))


def _text(payload: dict[str, Any] | None) -> str:
    if not payload:
        return ""
    if payload.get("encoding") == "BASE64":
        import base64

        try:
            return base64.b64decode(payload.get("data", "")).decode("utf-8", "replace")
        except ValueError:
            return "(binary)"
    return str(payload.get("data", ""))
