"""Request bodies in, response bodies out: the content types of SageMaker's model containers.

Requests: text/csv (no header, the training table's column order without the target),
text/csv;header=present, application/json ({"instances": [...]} of objects or arrays),
application/jsonlines. Responses (by Accept): text/csv, application/json,
application/jsonlines, carrying Autopilot's inference keys.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import uuid
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.artifacts import Model
from tabpilot.artifacts.validate import missing_columns_message
from tabpilot.data.prepare import plain_value
from tabpilot.errors import TabpilotError

INFERENCE_KEYS = ("predicted_label", "probability", "probabilities", "labels")
ON_BAD_VALUE_HEADER = "x-tabpilot-on-bad-value"  # "missing": read unreadable values as missing
# InvokeEndpoint's InferenceId (boto3 sends it in this header): the capture record's
# eventMetadata.inferenceId, by which ground truth is joined later; one is made up if absent
INFERENCE_ID_HEADER = "x-amzn-sagemaker-inference-id"
INFERENCE_ID_CHARS = 64  # SageMaker's limit


def inference_id(given: str | None) -> str:
    """The request's inference id, checked as SageMaker checks it (1-64 printable
    characters, not starting with a space), or a new one."""
    if given is None:
        return uuid.uuid4().hex
    if not 0 < len(given) <= INFERENCE_ID_CHARS or not given.isprintable() or \
            given[0].isspace():
        raise BadRequest(f"the inference id ({INFERENCE_ID_HEADER} header) must be 1 to "
                         f"{INFERENCE_ID_CHARS} printable characters, not starting with a "
                         f"space; got {len(given)} characters")
    return given
CSV, JSON, JSONLINES = "text/csv", "application/json", "application/jsonlines"


class BadRequest(TabpilotError):
    """The request cannot be understood; answered with a 4xx status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def media_type(header: str | None, default: str = CSV) -> tuple[str, dict[str, str]]:
    """'text/csv; header=present' -> ('text/csv', {'header': 'present'})."""
    if not header or header.strip() in ("*/*", ""):
        return default, {}
    first = header.split(",")[0]
    parts = [p.strip() for p in first.split(";")]
    params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    kind = parts[0].lower()
    if kind in ("application/x-jsonlines", "application/jsonl", "application/x-ndjson"):
        kind = JSONLINES
    if kind == "*/*":
        kind = default
    return kind, {k.strip().lower(): v.strip().lower() for k, v in params.items()}


def input_columns(model: Model) -> list[str]:
    """The training table's columns without the target, in their original order."""
    return list(model.metadata.get("input_schema") or model.features)


def body_text(body: bytes, wanted: str) -> str:
    """A request body as text: BadRequest when it is not UTF-8 or empty (`wanted` says
    what to send instead)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body is not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise BadRequest(f"empty request body; send {wanted}")
    return text


def decode(body: bytes, content_type: str | None, model: Model) -> pd.DataFrame:
    kind, params = media_type(content_type)
    text = body_text(body, "at least one row")
    if kind == CSV:
        return _from_csv(text, params.get("header") == "present", model)
    if kind == JSON:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"body is not valid JSON: {exc.msg} at line {exc.lineno} "
                             f"column {exc.colno}") from None
        rows = payload.get("instances") if isinstance(payload, dict) else payload
        if isinstance(payload, dict) and rows is None:
            rows = [payload]  # a single object is one row
        if not isinstance(rows, list):
            raise BadRequest('JSON body must be {"instances": [...]} or a list of rows')
        return _from_rows(rows, model)
    if kind == JSONLINES:
        return _from_rows(json_lines(text), model)
    raise BadRequest(f"unsupported content type {kind!r}; use text/csv, application/json "
                     "or application/jsonlines", status=415)


def _blank_to_none(row: list[str]) -> list[Any]:
    return [None if v.strip() == "" else v for v in row]


def _from_csv(text: str, header: bool, model: Model) -> pd.DataFrame:
    try:  # newline="": a stray \r is a line end, as in csv files, not a reader error
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise BadRequest(f"body is not valid CSV: {exc}") from None
    if header:
        names, rows = rows[0], rows[1:]
        if not rows:
            raise BadRequest("CSV has a header but no rows")
        if len(set(names)) < len(names):
            raise BadRequest(f"CSV header names a column twice: {', '.join(names)}")
        for i, row in enumerate(rows, start=1):
            if len(row) != len(names):
                raise BadRequest(f"CSV row {i} has {len(row)} values; the header has "
                                 f"{len(names)}")
        return _frame([_blank_to_none(r) for r in rows], names, model, "CSV")
    return _positional([_blank_to_none(r) for r in rows], model, "CSV")


def _positional(rows: list[list[Any]], model: Model, what: str) -> pd.DataFrame:
    """Rows of values in training column order (all input columns, or only the features)."""
    inputs, features = input_columns(model), model.features
    for i, row in enumerate(rows, start=1):
        if len(row) not in (len(inputs), len(features)):
            # a text model's one value is a document: its commas need CSV quotes
            text = len(features) == 1 and \
                (model.metadata.get("input_schema") or {}).get(features[0]) == "text"
            hint = f' or 1, the text of {features[0]!r} (quote it: "...", when it holds ' \
                'commas)' if text else ""
            raise BadRequest(f"{what} row {i} has {len(row)} values; expected {len(inputs)} "
                             f"(the training columns without the target, in order){hint}")
    width = {len(r) for r in rows}
    if len(width) > 1:
        raise BadRequest(f"{what} rows have different lengths: {sorted(width)}")
    names = inputs if width == {len(inputs)} else features
    return object_frame(rows, names)


def object_frame(rows: list[list[Any]], names: list[str]) -> pd.DataFrame:
    """Rows of equal length as an object-dtype frame: one object matrix under a column
    index made once per set of names (a one-row request's frame in tens of microseconds,
    where pandas' list-of-lists path infers every column and the index anew)."""
    values = np.empty((len(rows), len(names)), dtype=object)
    values[:] = rows
    # dtype=object: else pandas tries every column as dates (80 columns: 0.4 ms, not 24 us)
    return pd.DataFrame(values, columns=_column_index(tuple(names)), dtype=object, copy=False)


@functools.lru_cache(maxsize=256)
def _column_index(names: tuple[str, ...]) -> pd.Index:
    return pd.Index(names, dtype=object)


def _from_rows(rows: list[Any], model: Model) -> pd.DataFrame:
    if not rows:
        raise BadRequest("no rows in the request; send at least one")
    if all(isinstance(r, dict) and "features" in r and len(r) == 1 for r in rows):
        rows = [r["features"] for r in rows]
    if all(isinstance(r, list) for r in rows):
        return _positional(rows, model, "JSON")
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise BadRequest(f"row {i} is a {type(row).__name__}; send objects (column: value) "
                             "or arrays of values in training column order")
    return _frame(rows, None, model, "JSON")


def _frame(rows: list[Any], names: list[str] | None, model: Model, what: str) -> pd.DataFrame:
    df = object_frame(rows, names) if names is not None else pd.DataFrame.from_records(rows)
    missing = [c for c in model.features if c not in df.columns]
    if missing:
        raise BadRequest(missing_columns_message(missing, f"{what} input"))
    return df


# -- responses ----------------------------------------------------------------------------
def predict_columns(model: Model, df: pd.DataFrame, keys: list[str]) -> dict[str, Any]:
    """The requested inference keys as whole columns (arrays), for batches of any size.

    `df` has passed `model.check` (artifacts/validate.py); the predictor is called
    directly so that the rows are not checked twice."""
    if model.classes is None:
        return {"predicted_label": model.predictor.predict(df)}
    proba = model.predictor.raw_predict(df)
    chosen = model.predictor.labels_from_index(proba)
    classes = np.asarray([plain_value(c) for c in model.classes], dtype=object)
    full = {
        "predicted_label": lambda: classes[chosen],
        "probability": lambda: proba[np.arange(len(proba)), chosen],
        "probabilities": lambda: proba,
        "labels": lambda: np.broadcast_to(classes, proba.shape),
    }
    return {k: full[k]() for k in keys if k in full}


def prediction_table(model: Model, df: pd.DataFrame) -> pd.DataFrame:
    """One row per input row: predicted_label; for classification, predicted_probability
    (the probability of the predicted label, after the tuned threshold) and
    probability_<class> for every class. `df` has passed `model.check`."""
    if model.classes is None:
        return pd.DataFrame({"predicted_label": model.predictor.predict(df)})
    proba = model.predictor.raw_predict(df)  # as predict_columns: no DataFrame to unwrap
    chosen = model.predictor.labels_from_index(proba)
    classes = [plain_value(c) for c in model.classes]
    table = pd.DataFrame({"predicted_label": np.asarray(classes, dtype=object)[chosen],
                          "predicted_probability": proba[np.arange(len(proba)), chosen]})
    for i, label in enumerate(classes):
        table[f"probability_{label}"] = proba[:, i]
    return table


def predict_records(model: Model, df: pd.DataFrame, keys: list[str]) -> list[dict[str, Any]]:
    """One dict per row with the requested inference keys (JSON-ready values)."""
    columns = predict_columns(model, df, keys)
    plain = {k: v.tolist() for k, v in columns.items()}
    return [{k: plain[k][i] for k in plain} for i in range(len(df))]


def parse_keys(value: str | None, model: Model) -> list[str]:
    if not value:
        return ["predicted_label"] if model.classes is None else ["predicted_label", "probability"]
    keys = [k.strip() for k in value.split(",") if k.strip()]
    unknown = [k for k in keys if k not in INFERENCE_KEYS]
    if unknown:
        raise BadRequest(f"unknown output key {unknown[0]!r}; use any of: {', '.join(INFERENCE_KEYS)}")
    return keys


def encode(records: list[dict[str, Any]], accept: str | None, keys: list[str]) -> tuple[bytes, str]:
    kind, _ = media_type(accept)
    if kind == JSON:
        return json.dumps({"predictions": records}).encode(), JSON
    if kind == JSONLINES:
        return "".join(json.dumps(r) + "\n" for r in records).encode(), JSONLINES
    if kind == CSV:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for r in records:
            writer.writerow([json.dumps(r[k]) if isinstance(r.get(k), list) else r.get(k)
                             for k in keys if k in r])
        return buf.getvalue().encode(), CSV
    raise BadRequest(f"unsupported Accept {kind!r}; use text/csv, application/json or "
                     "application/jsonlines", status=406)


def json_lines(text: str) -> list[Any]:
    """The rows of a JSON lines body (blank lines skipped), or BadRequest naming the first
    line that is not JSON."""
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise BadRequest(f"line {i} is not valid JSON: {exc.msg}") from None
    return rows
