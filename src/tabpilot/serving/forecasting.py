"""A forecasting model behind `/invocations` and batch transform.

A model directory says what it holds in its (checksummed) metadata: `load` verifies it
against its manifest, reads the problem type, and returns either the tabular `Model` or a
`ForecastModel`, so `serve-model`, `tabpilot serve`, the facade's endpoints and batch
transform all take either kind from one call.

A request is the recent history of one or many items, in the job's own column names:

    text/csv (a header row is required: the history is a table, not a feature vector)
    application/json   {"instances": [{"id": "a", "ds": "2024-03-01", "y": 3.0}, ...]}
                       or a list of such objects
    application/jsonlines   one such object per line

A model trained with known-in-advance covariates (its metadata's `covariates`) also needs
their values for the horizon: rows after each item's history with the target empty (null
or left out in JSON, an empty field in CSV) and the covariates given, in the same body or
file. A request that lacks one, where the job set no futurefill for it, is refused with
one line that names the covariate, the item and the first period missing.

and the answer is the forecast for the horizon after each item's last timestamp: the item's
key columns, the timestamp, `mean` and one column per quantile (p10, p50, p90), as CSV
(with its header), {"predictions": [...]} or JSON lines. Bad input (a missing column, a
timestamp off the job's frequency grid, a history too short for the model) is the same
one line `tabpilot forecast-predict` prints, answered 400.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot.artifacts.manifest import METADATA
from tabpilot.serving.codec import (
    CSV,
    JSON,
    JSONLINES,
    BadRequest,
    body_text,
    json_lines,
    media_type,
)

PROBLEM_TYPE = "TimeSeriesForecasting"


class ForecastModel:
    """A loaded, verified forecasting model, as the servers hold one."""

    def __init__(self, predictor: Any, metadata: dict[str, Any], path: Path) -> None:
        self.predictor = predictor
        self.metadata = metadata
        self.path = path

    @property
    def columns(self) -> list[str]:
        """The history's columns: the keys that name an item, the timestamp, the target,
        and the covariates (known in advance, also given for the horizon)."""
        r = self.predictor.request
        return [*([r.item_id] if r.item_id else []), *r.grouping, r.timestamp, r.target,
                *self.covariates]

    @property
    def covariates(self) -> list[str]:
        """The covariates whose future values a request must carry (none for most)."""
        return list(self.metadata.get("covariates") or [])

    def forecast(self, history: pd.DataFrame) -> pd.DataFrame:
        return self.predictor.predict(history)

    def answer(self, body: bytes, content_type: str | None, accept: str | None
               ) -> tuple[bytes, str]:
        """One request's response body and its content type; BadRequest or a
        TabpilotError (the history's problem) for bad input."""
        frame = self.decode(body, content_type)
        return encode(self.forecast(frame), accept, self.predictor.request.timestamp)

    def decode(self, body: bytes, content_type: str | None) -> pd.DataFrame:
        kind, _ = media_type(content_type)
        text = body_text(body, "each item's recent history")
        if kind == CSV:
            return self._csv(text)
        if kind == JSON:
            try:
                payload = json.loads(text)
            except json.JSONDecodeError as exc:
                raise BadRequest(f"body is not valid JSON: {exc.msg} at line {exc.lineno} "
                                 f"column {exc.colno}") from None
            rows = payload.get("instances") if isinstance(payload, dict) else payload
            return self._rows(rows)
        if kind == JSONLINES:
            return self._rows(json_lines(text))
        raise BadRequest(f"unsupported content type {kind!r}; use text/csv (with a header), "
                         "application/json or application/jsonlines", status=415)

    def _csv(self, text: str) -> pd.DataFrame:
        try:
            rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
        except csv.Error as exc:
            raise BadRequest(f"body is not valid CSV: {exc}") from None
        names = rows[0]
        if not set(names) & set(self.columns):
            raise BadRequest("CSV needs a header row naming the history's columns: "
                             f"{','.join(self.columns)}")
        if len(rows) < 2:
            raise BadRequest("CSV has a header but no rows")
        for i, row in enumerate(rows[1:], start=1):
            if len(row) != len(names):
                raise BadRequest(f"CSV row {i} has {len(row)} values; the header has "
                                 f"{len(names)}")
        return pd.DataFrame([[None if v.strip() == "" else v for v in r] for r in rows[1:]],
                            columns=names, dtype=object)

    def _rows(self, rows: Any) -> pd.DataFrame:
        if not isinstance(rows, list) or not rows:
            raise BadRequest('send {"instances": [{column: value, ...}, ...]} with each '
                             f"item's recent history ({', '.join(self.columns)})")
        for i, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                raise BadRequest(f"row {i} is a {type(row).__name__}; send objects naming "
                                 f"the columns {', '.join(self.columns)}")
        return pd.DataFrame.from_records(rows)

    def __repr__(self) -> str:
        return f"ForecastModel({self.metadata.get('candidate')!r}, {self.path})"


def encode(frame: pd.DataFrame, accept: str | None, timestamp: str) -> tuple[bytes, str]:
    """The forecast as CSV (with a header), {"predictions": [...]} or JSON lines."""
    kind, _ = media_type(accept)
    if kind == CSV:
        return frame.to_csv(index=False, lineterminator="\n").encode(), CSV
    records = frame.assign(**{timestamp: frame[timestamp].map(pd.Timestamp.isoformat)}) \
        .to_dict(orient="records")
    if kind == JSON:
        return json.dumps({"predictions": records}).encode(), JSON
    if kind == JSONLINES:
        return "".join(json.dumps(r) + "\n" for r in records).encode(), JSONLINES
    raise BadRequest(f"unsupported Accept {kind!r}; use text/csv, application/json or "
                     "application/jsonlines", status=406)


def is_forecasting(directory: str | Path) -> bool:
    """Whether a model directory's metadata names a forecasting model (read as text, before
    anything is verified or unpickled; the loader verifies)."""
    try:
        meta = json.loads((Path(directory) / METADATA).read_text())
    except (OSError, ValueError):
        return False  # the tabular loader says what is wrong with the directory
    return isinstance(meta, dict) and meta.get("problem_type") == PROBLEM_TYPE


def load(directory: str | Path) -> Any:
    """The model in `directory`, verified against its manifest: a `ForecastModel` for a
    forecasting model, else the tabular `Model`."""
    if is_forecasting(directory):
        from tabpilot.forecast.model import load as load_forecast

        predictor, metadata = load_forecast(directory)
        return ForecastModel(predictor, metadata, Path(directory))
    from tabpilot.artifacts import load as load_tabular

    return load_tabular(directory)
