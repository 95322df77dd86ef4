"""The packaged model: a self-contained directory with a sha256 manifest.

    model/
      predictor.pkl     the fitted pipeline (encoder, estimator, label encoding)
      metadata.json     problem type, classes, threshold, input schema, metrics, params
      compiled*.npz     tree models only: the compiled path (artifacts/compiled),
      compiled-kernel.so    when it was checked equal to the Python path at packaging
      members/<i>/      an ensemble's or a stack's members, each a model directory of
                        its own hard-linked from the member candidate's (format 2,
                        artifacts/composite.py); `save` without their directories
                        pickles the members into predictor.pkl instead (format 1)
      manifest.json     sha256 and size of every other file, members' included

`load` verifies the manifest before unpickling anything (once: a composite's members
are covered by it), and attaches the compiled paths when the model has them and this
machine can run them (else the Python path serves).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot import __version__
from tabpilot.artifacts import compiled, composite, manifest
from tabpilot.artifacts.manifest import MANIFEST, METADATA, PREDICTOR
from tabpilot.artifacts.predictor import BasePredictor, as_frame
from tabpilot.artifacts.validate import PYTHON_HINT, InputReport, InputSchema, check_input
from tabpilot.errors import ModelIntegrityError, NotFoundError

__all__ = ["MANIFEST", "METADATA", "PREDICTOR", "Model", "directory_bytes",
           "is_model_directory", "load", "save", "verify"]


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

    @functools.cached_property
    def input_schema(self) -> InputSchema:
        """The columns, kinds and known categories every input is checked against."""
        return InputSchema.of(self.predictor, self.metadata)

    def check(self, data: Any, on_bad_value: str = "error", *, first_row: int = 1,
              hint: str = PYTHON_HINT) -> tuple[pd.DataFrame, InputReport]:
        """`data` as a frame checked against the model's input schema, and what was found
        in it (artifacts/validate.py): a value that does not parse for its column's kind
        raises BadValueError unless `on_bad_value="missing"` reads it as missing."""
        return check_input(as_frame(data), self.input_schema, on_bad_value,
                           first_row=first_row, hint=hint)

    def predict(self, data: Any, on_bad_value: str = "error") -> np.ndarray:
        """Labels (classification) or values (regression), one per row of `data`."""
        return self.predictor.predict(self.check(data, on_bad_value)[0])

    def predict_proba(self, data: Any, on_bad_value: str = "error") -> pd.DataFrame:
        """Class probabilities, one column per class (classification only)."""
        return self.predictor.predict_proba(self.check(data, on_bad_value)[0])

    def explain(self, data: Any) -> pd.DataFrame:
        """Per-row contributions of each raw input column (see tabpilot.reports.explain)."""
        from tabpilot.reports.explain import explain

        return explain(self.predictor, as_frame(data))

    def __repr__(self) -> str:
        return (f"Model({self.metadata.get('candidate')!r}, {self.metadata.get('algorithm')}, "
                f"{self.problem_type.value})")


def save(predictor: BasePredictor, metadata: dict[str, Any], directory: str | Path,
         sample: pd.DataFrame | None = None, deadline: float | None = None,
         members: Sequence[str | Path] | None = None) -> Path:
    """Write the model directory atomically (a temp dir renamed into place).

    With `sample` rows (validation rows), a tree model also gets its compiled path,
    checked on them against the Python path, unless `deadline` (time.time()) comes first;
    an ensemble or a stack keeps its members' compiled paths and, with `sample`, compiles
    those of members that have none; metadata["compiled"] records the outcome.
    `members`, a composite's members' model directories (in the order of
    `predictor.members`), makes them hard-linked copies under members/ (format 2) instead
    of pickling them again; compiled paths then attached are attached in memory too.
    """
    directory = Path(directory)
    with staged(directory) as tmp:
        meta = dict(metadata, tabpilot_version=__version__, format=1)
        files: dict[str, dict[str, Any]] = {}
        if members is not None:
            layout, record = composite.write(predictor, members, tmp, sample, deadline)
            meta.update(layout)
            files = composite.member_files(tmp, len(members))
        else:
            meta.pop("member_dirs", None)  # a composite re-saved with members inside
            with open(tmp / PREDICTOR, "wb") as f:
                pickle.dump(predictor, f, protocol=pickle.HIGHEST_PROTOCOL)
            record = compiled.package(predictor, sample, tmp, deadline)
        if record is not None:
            meta["compiled"] = record
        (tmp / METADATA).write_text(json.dumps(meta, indent=2, default=_json_default))
        files.update({p.name: manifest.entry(p) for p in tmp.iterdir() if p.is_file()})
        manifest.write(tmp, files)
    return directory


@contextlib.contextmanager
def staged(directory: Path) -> Iterator[Path]:
    """A temporary folder beside `directory` to write a model directory into: it replaces
    `directory` when the block ends, and is removed if the block fails, so readers see the
    old directory or the new one, never half of one."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-model-", dir=directory.parent))
    try:
        yield tmp
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def verify(directory: str | Path) -> dict[str, Any]:
    """The manifest of a model directory that matches it completely, else
    ModelIntegrityError: every file present (members' included) is listed with its sha256,
    nothing listed is missing, nothing else is there (no stray file, no symlink), and each
    model directory inside holds its pickle and metadata. Nothing is loaded before this."""
    directory = Path(directory)
    if not is_model_directory(directory):
        raise NotFoundError(f"{directory} is not a tabpilot model directory (no {MANIFEST})")
    try:
        listed = manifest.read(directory)
        entries = listed["files"]
        assert isinstance(entries, dict) and all(isinstance(e["sha256"], str)
                                                 for e in entries.values())
    except Exception:
        raise ModelIntegrityError(f"{directory / MANIFEST} is not a model manifest; "
                                  "re-export the model") from None
    present = _present_files(directory)
    unlisted = sorted(present - set(entries) - {MANIFEST})
    if unlisted:
        raise ModelIntegrityError(f"model file {directory / unlisted[0]} is not in {MANIFEST}; "
                                  "a model directory holds only the files its manifest lists, "
                                  "remove it or re-export the model")
    for required in _required(entries):
        if required not in entries:
            raise ModelIntegrityError(f"{MANIFEST} of {directory} does not list {required}; "
                                      "re-export the model")
    for name, entry in entries.items():  # a composite's: its members' files too
        path = directory / name
        if name not in present:
            raise ModelIntegrityError(f"model file {path} is missing; re-export the model")
        if manifest.sha256(path) != entry["sha256"]:
            raise ModelIntegrityError(
                f"model file {path} does not match its sha256 in {MANIFEST}; "
                "the model was modified or corrupted, re-export it")
    return listed


def _present_files(directory: Path) -> set[str]:
    """The relative paths of the files under `directory`; a symlink is refused (it may lead
    anywhere, and change after the check)."""
    found = set()
    for path in directory.rglob("*"):
        if path.is_symlink():
            raise ModelIntegrityError(f"{path} is a symbolic link; a model directory holds "
                                      "plain files only, re-export the model")
        if path.is_file():
            found.add(path.relative_to(directory).as_posix())
    return found


def _required(entries: dict[str, Any]) -> list[str]:
    """The pickle and metadata of the model and of every member model directory listed."""
    roots = [""] + [name[: -len(MANIFEST)] for name in entries if name.endswith("/" + MANIFEST)]
    return [root + required for root in roots for required in (PREDICTOR, METADATA)]


def load(directory: str | Path) -> Model:
    return _load(Path(directory), {})


def load_many(directories: Sequence[str | Path]) -> list[Model]:
    """The models of `directories`, a candidate that several of them hold read once (by
    its pickle's inode, as `_read`): the members of an ensemble to build (a stack and its
    members beside it) are then the objects a load of the packaged ensemble makes, and
    the ensemble answers and is timed as it will serve."""
    seen: dict[tuple[int, int], BasePredictor] = {}
    return [_load(Path(d), seen) for d in directories]


def _load(directory: Path, seen: dict[tuple[int, int], BasePredictor]) -> Model:
    files = verify(directory)["files"]
    predictor, metadata = _read(directory, seen)
    reason = (metadata.get("compiled") or {}).get("reason", "no compiled path")
    if compiled.files(files):  # all the single candidates' at once (shared row encoders)
        reason = compiled.attach(predictor, directory, files)
    return Model(predictor, metadata, directory, reason)


def _read(directory: Path, seen: dict[tuple[int, int], BasePredictor]
          ) -> tuple[BasePredictor, dict[str, Any]]:
    """The predictor of a verified model directory, a composite's members read in turn.

    A candidate that a composite holds twice (in a stack inside an ensemble, and beside
    it) is read once: its copies' pickles are hard links to one file (`seen`, by inode),
    so both places get the same object, unpickled and compiled once.
    """
    metadata = json.loads((directory / METADATA).read_text())
    stat = (directory / PREDICTOR).stat()
    key = (stat.st_dev, stat.st_ino)
    if key in seen:
        return seen[key], metadata
    with open(directory / PREDICTOR, "rb") as f:
        predictor = pickle.load(f)  # verified against the manifest
    if composite.is_composite(predictor):
        composite.read_members(predictor, directory, metadata, lambda d: _read(d, seen)[0])
    seen[key] = predictor
    return predictor, metadata


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
