"""A built-in algorithm's model served as its container serves it:

    requests   text/csv (rows of numbers, no header, no label), application/json
               ({"instances": [{"features": [...]}, ...]} or a list of rows),
               text/libsvm (XGBoost)
    responses  text/csv (one line per row: the score(s), or label and score),
               application/json ({"predictions": [{...}, ...]}; RCF: {"scores": [...]}),
               application/jsonlines (one record per line)

`load(model_dir, algorithm)` reads the files a model.tar.gz unpacked to; `BuiltinModel`
answers a request body. Used by the server through the loader the SageMaker API installs.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from tabpilot.errors import TabpilotError
from tabpilot.training.base import Predictor
from tabpilot.training.job import algorithm_module

CSV, JSON, JSONLINES, LIBSVM = "text/csv", "application/json", "application/jsonlines", \
    "text/libsvm"
MARKER = ".tabpilot-builtin.json"  # written by CreateModel beside the unpacked files


class BadInput(TabpilotError):
    """A request the model cannot read (answered 400)."""


class BuiltinModel:
    def __init__(self, algorithm: str, predictor: Predictor) -> None:
        self.algorithm, self.predictor = algorithm, predictor
        self.metadata = {"algorithm": algorithm}

    def answer(self, body: bytes, content_type: str | None,
                accept: str | None) -> tuple[bytes, str]:
        X = self.rows(body, content_type)
        records = self.predictor.records(X)
        return encode(records, accept, self.predictor.json_key)

    def rows(self, body: bytes, content_type: str | None):
        kind = (content_type or CSV).split(";")[0].strip().lower()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput("the request body is not UTF-8 text") from None
        if not text.strip():
            raise BadInput("the request body holds no rows")
        if kind in (LIBSVM, "text/x-libsvm", "libsvm") and self.algorithm == "xgboost":
            from sklearn.datasets import load_svmlight_file

            try:
                X, _ = load_svmlight_file(io.BytesIO(body), n_features=self.predictor.features,
                                          zero_based=True)
            except ValueError as exc:
                raise BadInput(f"cannot read the body as LibSVM: {exc}") from None
            return X
        if kind in (CSV, "csv"):
            try:
                frame = pd.read_csv(io.StringIO(text), header=None)
                X = frame.apply(pd.to_numeric, errors="raise").to_numpy(dtype=float)
            except (ValueError, pd.errors.ParserError) as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise BadInput(f"the CSV rows must be numbers only, no header: {first}") from None
        elif kind in (JSON, JSONLINES):
            X = _json_rows(text, kind)
        else:
            raise BadInput(f"Content-Type {content_type!r}: the built-in {self.algorithm} "
                           "model reads text/csv or application/json"
                           + (" or text/libsvm" if self.algorithm == "xgboost" else ""))
        if X.ndim != 2 or X.shape[1] != self.predictor.features:
            raise BadInput(f"each row needs {self.predictor.features} feature values (no "
                           f"label); got {X.shape[1] if X.ndim == 2 else 0}")
        if self.algorithm != "xgboost" and np.isnan(X).any():
            raise BadInput(f"the {self.algorithm} model takes no missing values")
        return X


def _json_rows(text: str, kind: str) -> np.ndarray:
    try:
        if kind == JSONLINES:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            doc = json.loads(text)
            items = doc.get("instances", doc.get("features")) if isinstance(doc, dict) else doc
            if isinstance(doc, dict) and "features" in doc:
                items = [doc]
    except ValueError as exc:
        raise BadInput(f"the body is not {kind}: {exc}") from None
    if not isinstance(items, list):
        raise BadInput('send {"instances": [{"features": [...]}, ...]} or a list of rows')
    rows = [item.get("features") if isinstance(item, dict) else item for item in items]
    try:
        return np.asarray(rows, dtype=float)
    except (TypeError, ValueError):
        raise BadInput("every instance needs the same number of numeric features") from None


def encode(records: list[dict[str, object]], accept: str | None,
           json_key: str = "predictions") -> tuple[bytes, str]:
    kind = (accept or CSV).split(",")[0].split(";")[0].strip().lower()
    if kind in ("*/*", ""):
        kind = CSV
    if kind in (JSON, "application/x-json"):
        return json.dumps({json_key: records}).encode(), JSON
    if kind in (JSONLINES, "application/x-jsonlines", "application/jsonl"):
        return "".join(json.dumps(r) + "\n" for r in records).encode(), JSONLINES
    if kind not in (CSV, "csv"):
        raise BadInput(f"Accept {accept!r}: answers are text/csv, application/json or "
                       "application/jsonlines")
    lines = []
    for record in records:
        cells: list[str] = []
        for key in ("predicted_label", "closest_cluster", "score", "distance_to_cluster"):
            value = record.get(key)
            if isinstance(value, list):
                cells += [repr(float(v)) for v in value]
            elif value is not None:
                cells.append(repr(float(value)))
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode(), CSV


def load(model_dir: str | Path, algorithm: str | None = None) -> BuiltinModel:
    folder = Path(model_dir)
    if algorithm is None:
        algorithm = json.loads((folder / MARKER).read_text())["algorithm"]
    return BuiltinModel(algorithm, algorithm_module(algorithm).load(folder))


def is_builtin(model_dir: str | Path) -> bool:
    return (Path(model_dir) / MARKER).is_file()
