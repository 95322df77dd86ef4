"""Where a job keeps its data, and where its notebook and exported scripts find it.

A job folder must rerun anywhere: copied elsewhere (the SageMaker facade copies it to
S3OutputPath), moved to another machine, its notebook executed from any working
directory. So the job records its inputs in job.json ("data", by `record_inputs`) as:

- a DataFrame: always copied into the job folder as `training_data.parquet` (there is
  no other place to find it again), referenced relative to the folder;
- a file: its absolute path, and a copy in the job folder (`training_data.csv`, ... with
  the file's own suffixes, byte for byte) when the file is at most COPY_MAX_BYTES on
  disk. The validation table and the feature-types file are kept the same way;
- a URI (s3://...): the URI only; it reads the same from another machine.

A rerun takes, for each input: the location given to it (a variable at the top of the
notebook or script, or an environment variable, TABPILOT_DATA...), else the recorded
location when it still exists, else the job folder's copy; else it stops with one line
saying what is missing and how to point it elsewhere (`locate`).

The job folder itself is found from the notebook's or script's own place (`find_job_dir`).
Nothing here unpickles: a job of tabpilot before 0.3 kept a DataFrame as a pickle, which
is refused with the way to give the table again.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from tabpilot.errors import DataError, NotFoundError

log = logging.getLogger("tabpilot.reports.datafiles")

COPY_MAX_BYTES = 100 * 2**20  # a table file up to this size on disk is copied into the job
DATA_COPY = "training_data.parquet"  # the copy of a DataFrame (CSV when Parquet fails)
OLD_PICKLE = "training_data.pkl"  # what tabpilot before 0.3 kept; never loaded
STEMS = {"input": "training_data", "validation_data": "validation_data",
         "feature_types": "feature_types"}
# the variable at the top of the generated code, and the environment variable, per input
VARIABLES = {"input": "DATA", "validation_data": "VALIDATION_DATA",
             "feature_types": "FEATURE_TYPES"}
WHAT = {"input": "training data", "validation_data": "validation data",
        "feature_types": "feature types file"}
_FORMAT_SUFFIXES = {".csv", ".tsv", ".txt", ".parquet", ".pq", ".jsonl", ".ndjson", ".json"}
_COMPRESSIONS = {".gz", ".bz2", ".xz", ".zst", ".zip"}


def env_name(key: str) -> str:
    return f"TABPILOT_{VARIABLES[key]}"


def code_fix(key: str) -> str:
    """How the user of a notebook or exported script points an input elsewhere."""
    return (f"set {VARIABLES[key]} at the top of the notebook or script, or the environment "
            f"variable {env_name(key)}, to its path or URI")


# -- keeping ----------------------------------------------------------------------------
def write_frame(df: pd.DataFrame, folder: Path, stem: str) -> tuple[str, str | None]:
    """`df` as `<stem>.parquet` in `folder`, replacing any earlier copy whole; returns the
    file's name and a note when values could not be kept as they are.

    Columns Parquet cannot hold (Python objects of mixed types: 1 and "a") are kept as
    text; a frame Parquet refuses even then (column names that are not text) is kept
    as CSV, whose every column reads back as a CSV column does.
    """
    try:
        return _replace(folder, f"{stem}.parquet", lambda p: df.to_parquet(p)), None
    except (pa.ArrowException, ValueError, TypeError):
        pass
    mixed = [c for c in df.columns if not _arrow_holds(df[c])]
    if mixed:
        as_text = df.copy(deep=False)
        for c in mixed:
            as_text[c] = df[c].astype(object).map(_text)
        try:
            name = _replace(folder, f"{stem}.parquet", lambda p: as_text.to_parquet(p))
        except (pa.ArrowException, ValueError, TypeError):
            pass
        else:
            listed = ", ".join(repr(c) for c in mixed[:5]) + (" ..." if len(mixed) > 5 else "")
            return name, (f"column(s) {listed} mix value types (such as numbers and text) that "
                          f"Parquet cannot hold; {name} keeps them as text")
    name = _replace(folder, f"{stem}.csv", lambda p: df.to_csv(p, index=False))
    return name, (f"the table cannot be kept as Parquet (its column names or values); {name} "
                  "keeps it as CSV, so its columns read back as a CSV file's do (numbers, "
                  "text, dates as text)")


def read_frame(path: Path) -> pd.DataFrame:
    """A frame `write_frame` kept (Parquet, or its CSV fallback)."""
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def _arrow_holds(column: pd.Series) -> bool:
    try:
        pa.array(column, from_pandas=True)
    except (pa.ArrowException, ValueError, TypeError):
        return False
    return True


def _text(value: Any) -> str | None:
    try:
        if bool(pd.isna(value)):
            return None
    except (TypeError, ValueError):  # a list or an array: not one missing value
        pass
    return str(value)


def _replace(folder: Path, name: str, write: Callable[[Path], object]) -> str:
    """Write `name` through a temporary file, so that no reader sees half a copy."""
    tmp = folder / f".{name}.tmp"
    try:
        write(tmp)
        tmp.replace(folder / name)
    finally:
        tmp.unlink(missing_ok=True)
    return name


def keep_copy(source: str, folder: Path, stem: str) -> str | None:
    """The name of the job folder's copy of the file `source` (made now when the file is
    at most COPY_MAX_BYTES), or None: a URI, a missing or too large file."""
    if "://" in source:
        return None
    path = Path(source)
    try:
        if not path.is_file():
            return None
        name = stem + _table_suffixes(path)
        if path.resolve() == (folder / name).resolve():  # the copy itself (a resumed job)
            return name
        size = path.stat().st_size
        if size > COPY_MAX_BYTES:
            log.info("%s is %.0f MB: the job folder keeps no copy of it (only of files up to "
                     "%d MB)", source, size / 2**20, COPY_MAX_BYTES // 2**20)
            _drop_others(folder, stem, keep=None)
            return None
        _replace(folder, name, lambda p: shutil.copyfile(path, p))
    except OSError:
        log.warning("could not copy %s into the job folder; a rerun needs the file where it "
                    "is", source, exc_info=True)
        return None
    _drop_others(folder, stem, keep=name)
    return name


def _table_suffixes(path: Path) -> str:
    """The suffixes that tell a reader the format: ".csv.gz" of "sales.2024.csv.gz"."""
    suffixes = [s for s in path.suffixes if s.isascii() and s[1:].isalnum()]
    kept: list[str] = []
    while suffixes and suffixes[-1].lower() in _COMPRESSIONS:
        kept.insert(0, suffixes.pop())
    if suffixes and suffixes[-1].lower() in _FORMAT_SUFFIXES:
        kept.insert(0, suffixes[-1])
    return "".join(kept)


def _drop_others(folder: Path, stem: str, keep: str | None) -> None:
    """An earlier run's copy of another file (a resumed job given other data) would be
    taken for this one's."""
    for old in [*folder.glob(f"{stem}.*"), folder / stem]:
        if old.name != keep and old.is_file():
            old.unlink(missing_ok=True)


def record_inputs(source: Any, validation_data: str | None, feature_types: str | None,
                  job_dir: Path) -> dict[str, Any]:
    """job.json's "data": where a rerun finds each input (see the module's docstring)."""

    def where(uri: str | None) -> str | None:
        if uri is None or "://" in uri:
            return uri
        return str(Path(uri).expanduser().resolve())

    record: dict[str, Any] = {"input": None, "input_is_copy": False, "copies": {}}
    if isinstance(source, pd.DataFrame):
        try:
            name, note = write_frame(source, job_dir, STEMS["input"])
        except Exception:  # the notebooks cannot reload it; the job itself goes on
            log.warning("could not keep a copy of the DataFrame; the candidate notebook "
                        "will not find the data", exc_info=True)
        else:
            _drop_others(job_dir, STEMS["input"], keep=name)
            record.update(input=name, input_is_copy=True)
            if note:
                log.warning("the job folder's copy of the DataFrame: %s", note)
                record["copy_note"] = note
    else:
        record["input"] = where(str(source))
    if record["input"] and not record["input_is_copy"]:
        copy = keep_copy(record["input"], job_dir, STEMS["input"])
        if copy:
            record["copies"]["input"] = copy
    for key, value in (("validation_data", validation_data), ("feature_types", feature_types)):
        record[key] = where(value)
        copy = keep_copy(record[key], job_dir, STEMS[key]) if record[key] else None
        if copy:
            record["copies"][key] = copy
    return record


# -- finding ----------------------------------------------------------------------------
def _is_job_dir(folder: Path, job: str) -> bool:
    path = folder / "job.json"
    try:
        if not path.is_file():
            return False
        name = (json.loads(path.read_text()).get("request") or {}).get("name")
    except (OSError, ValueError):
        return False
    return name == job or (name is None and folder.name == job)


def find_job_dir(job: str, given: str | Path | None = None,
                 near: Iterable[str | Path | None] = (), recorded: str | None = None) -> Path:
    """The folder of job `job` (the one holding its job.json).

    `given` (JOB_DIR at the top of the code) wins. Otherwise, from each place in `near`
    (the notebook's or script's file or folder, when the runtime tells it), then from the
    working directory: that folder and each one above it, as itself, or holding `<job>`
    or `jobs/<job>` (a workspace, or a copy of its job folders); the nearest wins. Last,
    the folder where the job wrote the code (`recorded`).
    """
    if given:
        folder = Path(given).expanduser()
        if _is_job_dir(folder, job):
            return folder.resolve()
        raise NotFoundError(f"{folder} is not the folder of job {job!r} (no job.json of that "
                            "job in it); set JOB_DIR at the top of the notebook or script, or "
                            "the environment variable TABPILOT_JOB_DIR, to the folder that "
                            "holds it")
    anchors = []
    for place in near:
        if place:
            path = Path(place).expanduser()
            anchors.append(path.parent if path.suffix in (".ipynb", ".py") else path)
    anchors.append(Path.cwd())
    for anchor in anchors:
        anchor = anchor.absolute()
        for folder in (anchor, *anchor.parents):
            for candidate in (folder, folder / job, folder / "jobs" / job):
                if _is_job_dir(candidate, job):
                    return candidate.resolve()
    if recorded and _is_job_dir(Path(recorded), job):
        return Path(recorded)
    raise NotFoundError(f"cannot find the folder of job {job!r} (its job.json) near this "
                        f"notebook or script, nor from the working directory {Path.cwd()}, "
                        f"nor at {recorded}; run it from inside the job folder, or set JOB_DIR "
                        "at the top of the notebook or script, or the environment variable "
                        "TABPILOT_JOB_DIR, to that folder")


@dataclass
class Inputs:
    """Where a rerun reads the job's data from."""

    source: str
    validation_data: str | None
    feature_types: str | None
    note: str | None = None  # how the copy of a DataFrame differs from the frame, if it does


def locate(job_dir: Path, data: dict[str, Any], key: str, given: str | None = None,
           fix: str | None = None) -> str | None:
    """The location to read input `key` from ("input", "validation_data" or
    "feature_types"); None when the job had no such input.

    `given` wins; then the recorded location if it still exists, then the job folder's
    copy. `fix` ends the error when none is found (default: how notebooks and scripts
    point it elsewhere).
    """
    if given:
        return str(given)
    recorded = data.get(key)
    if not recorded:
        if key == "input":
            raise DataError(f"job {job_dir.name!r} recorded no training data (its DataFrame "
                            f"could not be copied); {fix or code_fix(key)}")
        return None
    fix = fix or code_fix(key)
    if key == "input" and data.get("input_is_copy"):
        copy = job_dir / recorded
        if copy.name == OLD_PICKLE:
            raise DataError(f"job {job_dir.name!r} kept its DataFrame as a pickle "
                            f"({OLD_PICKLE}, tabpilot before 0.3), which tabpilot does not "
                            f"load (a pickle can run code); {fix}")
        if copy.is_file():
            return str(copy)
        raise DataError(f"the {WHAT[key]} of job {job_dir.name!r} is not found: its copy "
                        f"{copy} does not exist; {fix}")
    if "://" in recorded or Path(recorded).is_file():
        return str(recorded)
    copy_name = (data.get("copies") or {}).get(key)
    if copy_name and (job_dir / copy_name).is_file():
        return str(job_dir / copy_name)
    kept = (f"its copy {job_dir / copy_name} is gone too" if copy_name else
            f"the job folder {job_dir} holds no copy of it (a job keeps one of files up to "
            f"{COPY_MAX_BYTES // 2**20} MB)")
    raise DataError(f"the {WHAT[key]} of job {job_dir.name!r} is not found: {recorded} does "
                    f"not exist and {kept}; {fix}")


def job_inputs(job_dir: Path, data: dict[str, Any], *, source: str | None = None,
               validation_data: str | None = None, feature_types: str | None = None
               ) -> Inputs:
    """Every input of the job, as a notebook or an exported script reads it."""
    return Inputs(locate(job_dir, data, "input", source) or "",
                  locate(job_dir, data, "validation_data", validation_data),
                  locate(job_dir, data, "feature_types", feature_types),
                  data.get("copy_note") if not source else None)

