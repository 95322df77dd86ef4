"""The packaged model: a self-contained directory with a sha256 manifest.

    model/
      predictor.pkl     the fitted pipeline (encoder, estimator, label encoding)
      metadata.json     problem type, classes, threshold, input schema, metrics, params
      compiled*.npz     tree models only: the compiled path (artifacts/compiled),
      compiled-kernel.so    when it was checked equal to the Python path at packaging
      manifest.json     sha256 and size of every other file

`load` verifies the manifest before unpickling anything, and attaches the compiled path
when the model has one and this machine can run it (else the Python path serves).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot import __version__
from tabpilot.artifacts import compiled
from tabpilot.artifacts.predictor import BasePredictor, as_frame
from tabpilot.errors import ModelIntegrityError, NotFoundError

MANIFEST = "manifest.json"
PREDICTOR = "predictor.pkl"
METADATA = "metadata.json"


class Model:
    """A loaded, verified model. `predict` returns labels; `predict_proba` a DataFrame."""

    def __init__(self, predictor: BasePredictor, metadata: dict[str, Any],
                 path: Path | None = None, python_reason: str | None = None) -> None:
        self.predictor = predictor
        self.metadata = metadata
        self.path = path
        self.python_reason = python_reason  # why the compiled path does not serve, if so

    @property
    def compiled(self) -> bool:
        """Whether predictions take the compiled path (an ensemble's: some members' do)."""
        parts = compiled.single_predictors(self.predictor)
        return any(p.__dict__.get("compiled_") is not None for p in parts)

    @property
    def problem_type(self):
        return self.predictor.problem_type

    @property
    def classes(self) -> list | None:
        return self.predictor.classes

    @property
    def features(self) -> list[str]:
        return self.predictor.features

    def predict(self, data: Any) -> np.ndarray:
        return self.predictor.predict(as_frame(data))

    def predict_proba(self, data: Any) -> pd.DataFrame:
        return self.predictor.predict_proba(as_frame(data))

    def explain(self, data: Any) -> pd.DataFrame:
        """Per-row contributions of each raw input column (see tabpilot.reports.explain)."""
        from tabpilot.reports.explain import explain

        return explain(self.predictor, as_frame(data))

    def __repr__(self) -> str:
        return (f"Model({self.metadata.get('candidate')!r}, {self.metadata.get('algorithm')}, "
                f"{self.problem_type.value})")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save(predictor: BasePredictor, metadata: dict[str, Any], directory: str | Path,
         sample: pd.DataFrame | None = None, deadline: float | None = None) -> Path:
    """Write the model directory atomically (a temp dir renamed into place).

    With `sample` rows (validation rows), a tree model also gets its compiled path,
    checked on them against the Python path, unless `deadline` (time.time()) comes first;
    an ensemble keeps its members' compiled paths and, with `sample`, compiles those of
    members that have none; metadata["compiled"] records the outcome.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-model-", dir=directory.parent))
    try:
        with open(tmp / PREDICTOR, "wb") as f:
            pickle.dump(predictor, f, protocol=pickle.HIGHEST_PROTOCOL)
        meta = dict(metadata, tabpilot_version=__version__, format=1)
        record = compiled.package(predictor, sample, tmp, deadline)
        if record is not None:
            meta["compiled"] = record
        (tmp / METADATA).write_text(json.dumps(meta, indent=2, default=_json_default))
        files = {p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size}
                 for p in sorted(tmp.iterdir())}
        (tmp / MANIFEST).write_text(json.dumps({"files": files}, indent=2))
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def verify(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise NotFoundError(f"{directory} is not a tabpilot model directory (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    for name, entry in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            raise ModelIntegrityError(f"model file {path} is missing; re-export the model")
        if _sha256(path) != entry["sha256"]:
            raise ModelIntegrityError(
                f"model file {path} does not match its sha256 in {MANIFEST}; "
                "the model was modified or corrupted, re-export it")
    return manifest


def load(directory: str | Path) -> Model:
    directory = Path(directory)
    manifest = verify(directory)
    metadata = json.loads((directory / METADATA).read_text())
    with open(directory / PREDICTOR, "rb") as f:
        predictor = pickle.load(f)  # verified against the manifest above
    reason = (metadata.get("compiled") or {}).get("reason", "no compiled path")
    if compiled.files(manifest["files"]):
        reason = compiled.attach(predictor, directory)
    return Model(predictor, metadata, directory, reason)


def is_model_directory(path: str | Path) -> bool:
    """Whether `path` is a packaged model's directory (it holds a manifest)."""
    return (Path(path) / MANIFEST).is_file()


def directory_bytes(directory: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
