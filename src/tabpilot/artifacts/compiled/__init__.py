"""Fast inference: a compiled path for tree models, beside the Python one.

At packaging (`package.save` with sample rows) a LightGBM, XGBoost, CatBoost,
RandomForest or ExtraTrees candidate, one model or a bag of fold models, is flattened
into arrays (forest.py) that a small C kernel (kernel.c, built once per machine) scores;
a one-row request is encoded straight to floats (rows.py), text columns by the
encoder's vectorizers, densified. The compiled path is written into the model directory only when it
gives the Python path's predictions on the sample rows plus a row of missing values and
a row of unseen categories: the same labels, probabilities and values within 1e-6.
Otherwise, or when it would take too long, nothing is written and metadata.json's
"compiled" entry says why. An ensemble or a stack keeps its members' compiled paths.

    model/compiled.npz          the forest (plain arrays, no pickle)
    model/compiled-kernel.so    the kernel it was checked with (for machines without a compiler)
    model/members/<i>/compiled.npz   a composite's (format 2, artifacts/composite.py):
                                in member i's own model directory, with its kernel
    model/compiled-member-<i>.npz   a composite of format 1 (members inside its pickle):
                                the i-th single candidate's forest, depth first

`load` attaches the compiled paths of all the single candidates at once when those files
are there and the kernel loads on this machine; any failure leaves the Python path, with
the reason logged. Single candidates of a composite with equal encoders share one row
encoder, so a request is encoded once for them. Set TABPILOT_COMPILED=0 to use the
Python path everywhere.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.artifacts import manifest
from tabpilot.artifacts.compiled import catboost, lightgbm, sklearn, xgboost
from tabpilot.artifacts.compiled.builder import ForestBuilder
from tabpilot.artifacts.compiled.forest import Forest, Unsupported
from tabpilot.artifacts.compiled.native import Kernel, KernelUnavailable, library, verified
from tabpilot.artifacts.compiled.rows import RowEncoder, TextColumn
from tabpilot.errors import ModelIntegrityError

log = logging.getLogger("tabpilot.artifacts.compiled")

ENGINE = "tabpilot-trees"
FOREST_FILE = "compiled.npz"
KERNEL_FILE = "compiled-kernel.so"
TOLERANCE = 1e-6  # on probabilities; relative (floor 1) on regression values
SINGLE_ROW_CHECKS = 8  # sample rows also checked one at a time (the one-row encoder)
# nodes plus leaf values (a classifier forest's leaves hold one per class); larger forests
# are left to the Python path (build time and memory at packaging). 25M is about 250 MB of
# arrays, built in ~2 s: a 5-fold bag of 200 extra trees on wine_quality (7 classes) is
# 10.5M and costs 42 ms per row in Python.
MAX_NODES = 25_000_000
CONVERTERS = {"lightgbm": lightgbm.add, "xgboost": xgboost.add, "catboost": catboost.add,
              "random_forest": sklearn.add, "extra_trees": sklearn.add}
ABSENT_IS_MISSING = {"xgboost"}  # families reading a sparse (text) matrix's zeros as missing
CHUNK_VALUES = 1 << 22  # a large batch is encoded densely this many values at a time

__all__ = ["FOREST_FILE", "KERNEL_FILE", "CompiledPredictor", "KernelUnavailable", "Mismatch",
           "attach", "build_forest", "check", "compile_into", "enabled", "forest_paths",
           "package", "share_rows", "single_predictors"]


class CompiledPredictor:
    """The compiled replacement of `Predictor._raw`: rows -> probabilities or values."""

    def __init__(self, predictor: Any, forest: Forest, kernel_path: Path,
                 rows: RowEncoder | None = None) -> None:
        self.rows = rows or RowEncoder(predictor.encoder)
        self.forest = forest
        self.kernel = Kernel(forest, kernel_path)

    def raw(self, X: pd.DataFrame) -> np.ndarray:
        step = max(1024, CHUNK_VALUES // max(self.forest.n_cols, 1))
        if len(X) <= step:
            return self._raw(X)
        # wide dense encodings (text) of a large batch would not fit in memory at once
        return np.concatenate([self._raw(X.iloc[i:i + step]) for i in range(0, len(X), step)])

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        encoded = self.rows.encode(X)
        if self.forest.zeros_missing:  # as a sparse matrix's absent (and zero) entries
            encoded = np.where(encoded == 0.0, np.nan, encoded)
        return self.forest.combine(self.kernel.raw(encoded))


def enabled() -> bool:
    return os.environ.get("TABPILOT_COMPILED", "1").strip().lower() not in ("0", "false", "no",
                                                                            "off")


def package(predictor: Any, sample: pd.DataFrame | None, directory: Path,
            deadline: float | None = None) -> dict[str, Any] | None:
    """Write the compiled path into `directory`; returns its record, None if not tried.

    A candidate is compiled and checked on `sample`. A composite of format 1 (members
    inside its pickle) keeps the compiled paths its members were loaded with (each
    checked when the member was packaged); with `sample`, members without one (their
    trial ran out of time) are compiled now.
    """
    if getattr(predictor, "members", None) is not None:
        return _package_members(predictor, directory, sample, deadline)
    if sample is None:
        return None
    compiled, record = _compile(predictor, sample, deadline)
    if compiled is not None:
        _write(compiled, directory)
    return record


def compile_into(predictor: Any, directory: Path, sample: pd.DataFrame,
                 deadline: float | None = None) -> dict[str, Any]:
    """Compile a single candidate into its model directory `directory` (a composite's
    member copy: files are written new, never into a hard link), and attach it to
    `predictor`, so that it answers as it will once loaded; returns the record."""
    compiled, record = _compile(predictor, sample, deadline)
    if compiled is not None:
        _write(compiled, directory)
        predictor.compiled_ = compiled
    return record


def _write(compiled: CompiledPredictor, directory: Path) -> None:
    manifest.replace(directory / FOREST_FILE, compiled.forest.save)
    manifest.replace(directory / KERNEL_FILE,
                     lambda path: shutil.copyfile(compiled.kernel.path, path))


def _compile(predictor: Any, sample: pd.DataFrame, deadline: float | None
             ) -> tuple[CompiledPredictor | None, dict[str, Any]]:
    """The compiled path checked on `sample`, or None; and the record saying why not."""
    started = time.time()
    record: dict[str, Any] = {"engine": ENGINE}
    compiled = None
    try:
        if not enabled():
            raise Unsupported("disabled by TABPILOT_COMPILED")
        forest = build_forest(predictor, deadline)
        candidate = CompiledPredictor(predictor, forest, library())
        record.update(check(predictor, candidate, sample, deadline))
        compiled = candidate
        record["status"] = "compiled"
    except (Unsupported, KernelUnavailable, Mismatch, TimeoutError) as exc:
        record.update(status="python", reason=str(exc))
        log.info("compiled path not written: %s", exc)
    except Exception as exc:  # a converter meeting a model it does not know: keep Python
        record.update(status="python", reason=f"compilation failed: {type(exc).__name__}: {exc}")
        log.warning("compiled path not written", exc_info=True)
    record["seconds"] = round(time.time() - started, 3)
    return compiled, record


def single_predictors(predictor: Any) -> list[Any]:
    """The single candidates inside an ensemble or stack, depth first (a stack inside an
    ensemble gives its own members in turn); a single candidate is its own list. Member
    file i belongs to the i-th of them."""
    members = getattr(predictor, "members", None)
    if members is None:
        return [predictor]
    return [p for m in members for p in single_predictors(m)]


def _package_members(ensemble: Any, directory: Path, sample: pd.DataFrame | None,
                     deadline: float | None) -> dict[str, Any]:
    kernel = None
    here: dict[str, dict[str, Any]] = {}  # members compiled at this packaging
    members = single_predictors(ensemble)
    for i, member in enumerate(members):
        attached = member.__dict__.get("compiled_")
        if attached is None and sample is not None and getattr(member, "family", None) \
                in CONVERTERS:
            attached, here[str(i)] = _compile(member, sample, deadline)
        if attached is not None:
            attached.forest.save(directory / member_file(i))
            kernel = attached.kernel.path
    if kernel is not None:
        shutil.copyfile(kernel, directory / KERNEL_FILE)
    return members_record(forest_paths(ensemble, directory), here)


def members_record(paths: list[tuple[Any, Path]], here: dict[str, dict[str, Any]]
                   ) -> dict[str, Any]:
    """A composite's record: which single candidates (depth first) have a compiled path,
    and the records of those compiled at its packaging."""
    record: dict[str, Any] = {"engine": ENGINE, **({"compiled_here": here} if here else {})}
    compiled = [i for i, (_, path) in enumerate(paths) if path.is_file()]
    if not compiled:
        return {**record, "status": "python", "reason": "no member has a compiled path"}
    return {**record, "status": "compiled", "members": compiled}


def member_file(i: int) -> str:
    return f"compiled-member-{i}.npz"


def files(names: Any) -> list[str]:
    """The compiled path's forests among a model directory's file paths (relative)."""
    return [n for n in names if (name := Path(n).name) == FOREST_FILE
            or (name.startswith("compiled-member-") and name.endswith(".npz"))]


def forest_paths(predictor: Any, directory: Path) -> list[tuple[Any, Path]]:
    """Each single candidate inside `predictor` (depth first, as `single_predictors`) with
    the path of its forest under `directory`, whether or not that file exists: in its own
    model directory under members/ (format 2), else compiled-member-<i>.npz (format 1)."""
    members = getattr(predictor, "members", None)
    if members is None:
        return [(predictor, directory / FOREST_FILE)]
    if (directory / manifest.MEMBERS).is_dir():
        return [t for i, m in enumerate(members)
                for t in forest_paths(m, directory / manifest.MEMBERS / str(i))]
    return [(p, directory / member_file(i)) for i, p in enumerate(single_predictors(predictor))]


def attach(predictor: Any, directory: Path, files: dict[str, Any]) -> str | None:
    """Give a loaded predictor (or all the single candidates inside an ensemble or stack,
    at once) its compiled path; returns why not, or None when attached.

    `files` is the model's verified manifest: the kernel that loads is the model's own
    copy, its bytes checked against it (never a cached build another user may swap)."""
    if not enabled():
        return "disabled by TABPILOT_COMPILED"
    targets = forest_paths(predictor, directory)
    try:
        # a composite of format 2 carries its kernel in its members' directories
        bundled = [directory / KERNEL_FILE] + [p.parent / KERNEL_FILE for _, p in targets]
        own = next((k for k in bundled if k.is_file()), None)
        if own is None:
            raise KernelUnavailable("the model carries no compiled kernel")
        entry = files.get(own.relative_to(directory).as_posix())
        if entry is None:
            raise ModelIntegrityError(f"{own} is not in the model's manifest; re-export it")
        kernel = verified(own, entry["sha256"])
        shared = _shared_rows([t for t, _ in targets])
        done: set[int] = set()  # a candidate in a composite twice is one object (package)
        for target, path in targets:
            if path.is_file() and id(target) not in done:
                target.compiled_ = CompiledPredictor(target, Forest.load(path), kernel,
                                                     shared[id(target)])
                done.add(id(target))
        return None
    except (KernelUnavailable, OSError, ValueError, KeyError) as exc:
        for target, _ in targets:
            target.__dict__.pop("compiled_", None)
        log.warning("%s: using the Python path (%s)", directory, exc)
        return str(exc)


def share_rows(predictor: Any) -> None:
    """Let the single candidates of an ensemble or stack in memory share row encoders as
    `load` makes them (see `_shared_rows`), so that it is timed as it will serve."""
    singles = single_predictors(predictor)
    shared = _shared_rows(singles)
    for p in singles:
        attached = p.__dict__.get("compiled_")
        if attached is not None:
            attached.rows = shared[id(p)]


def _shared_rows(predictors: list[Any]) -> dict[int, RowEncoder]:
    """One encoder and RowEncoder per distinct encoder (equal pickles) among an ensemble's
    members: members with equal encoders get the same object, so that a request is
    encoded once for them (the Python path's encoding as well). The RowEncoders share
    their text columns' vectorizers where those pickle equal (rows.TextColumn)."""
    by_state: dict[bytes, RowEncoder] = {}
    texts: dict[tuple[str, bytes], TextColumn] = {}
    shared = {}
    for p in predictors:
        encoder = getattr(p, "encoder", None)
        if encoder is None or not hasattr(encoder, "numeric"):  # a nested ensemble, or a
            continue  # text featurizer (tabpilot.text: no compiled path, no row encoder)
        state = pickle.dumps(encoder, protocol=pickle.HIGHEST_PROTOCOL)
        if state not in by_state:
            by_state[state] = RowEncoder(encoder, texts)
        p.encoder = by_state[state].encoder
        shared[id(p)] = by_state[state]
    return shared


def build_forest(predictor: Any, deadline: float | None = None) -> Forest:
    from tabpilot.artifacts.predictor import Predictor

    if type(predictor) is not Predictor:
        raise Unsupported(f"{type(predictor).__name__} (only single candidates are compiled)")
    convert = CONVERTERS.get(predictor.family)
    if convert is None:
        raise Unsupported(f"the {predictor.family} family has no compiled path")
    encoder = predictor.encoder
    n_codes = max((len(c) for c in encoder.categories_.values()), default=0)
    builder = ForestBuilder(encoder.n_features_out_, predictor.problem_type, n_codes, deadline)
    builder.zeros_missing = bool(encoder.text) and predictor.family in ABSENT_IS_MISSING
    for estimator in predictor.estimators:
        _in_time(deadline)
        convert(builder, estimator, predictor.problem_type)
        if builder.size > MAX_NODES:
            raise Unsupported(f"over {MAX_NODES:,} tree nodes and leaf values")
    return builder.build()


class Mismatch(Exception):
    """The compiled path's predictions are not the Python path's."""


def check(predictor: Any, compiled: CompiledPredictor, sample: pd.DataFrame,
          deadline: float | None = None) -> dict[str, Any]:
    """Compare both paths on the frames of `check_frames`; raise Mismatch when they differ."""
    frames = check_frames(predictor, sample)
    _in_time(deadline)
    attached = predictor.__dict__.pop("compiled_", None)  # a loaded model's, if any
    try:
        expected = _reference(predictor, frames)
        predictor.compiled_ = compiled
        got = [predictor.raw_predict(f) for f in frames]
    finally:
        predictor.__dict__.pop("compiled_", None)
        if attached is not None:
            predictor.compiled_ = attached
    diff, changed = 0.0, 0
    for e, g in zip(expected, got, strict=True):
        diff = max(diff, _difference(predictor, e, g))
        if predictor.problem_type.is_classification and e.shape == g.shape:
            changed += int((predictor.labels_from_index(e) != predictor.labels_from_index(g)).sum())
    if diff > TOLERANCE:
        raise Mismatch(f"compiled predictions differ from the Python path by {diff:.3g} "
                       f"(tolerance {TOLERANCE:g})")
    if changed:
        raise Mismatch(f"compiled labels differ from the Python path on {changed} rows")
    return {"checked_rows": sum(len(f) for f in frames), "max_difference": float(diff)}


def _reference(predictor: Any, frames: list[pd.DataFrame]) -> list[np.ndarray]:
    """The Python path's predictions of each frame; one call for the one-row frames of a
    kind (same dtypes), split by row: a small batch is encoded value by value and scored
    row by row, so a row's prediction is the one it gets alone, and a forest's Python
    path costs as much for one row as for many (per-tree calls)."""
    out: list[np.ndarray | None] = [None] * len(frames)
    kinds: dict[tuple, list[int]] = {}
    for i, frame in enumerate(frames):
        if len(frame) == 1:
            kinds.setdefault(tuple(map(str, frame.dtypes)), []).append(i)
        else:
            out[i] = predictor.raw_predict(frame)
    for at in kinds.values():
        batch = predictor.raw_predict(pd.concat([frames[i] for i in at], ignore_index=True))
        for k, i in enumerate(at):
            out[i] = batch[k:k + 1]
    return [o for o in out if o is not None]


def check_frames(predictor: Any, sample: pd.DataFrame) -> list[pd.DataFrame]:
    """The sample as a batch; a row of missing values and a row of unseen categories;
    the first rows one at a time, as they are and as the text a CSV request carries."""
    features = list(predictor.features)
    base = sample[features].reset_index(drop=True)
    edge = pd.DataFrame([[None] * len(features)] * 2, columns=features, dtype=object)
    if len(base):
        edge.iloc[1] = base.iloc[0].astype(object)
    for col in predictor.encoder.categorical:
        edge.loc[1, col] = "\x00unseen"
    singles = [base.iloc[[i]] for i in range(min(SINGLE_ROW_CHECKS, len(base)))]
    text = [row.astype(str).where(row.notna(), None) for row in singles[:SINGLE_ROW_CHECKS // 2]]
    return [base, edge, *singles, *text]


def _difference(predictor: Any, expected: np.ndarray, got: np.ndarray) -> float:
    """The largest difference: absolute on probabilities, relative (floor 1) on values;
    NaN against a number is infinite, NaN against NaN nothing."""
    if expected.shape != got.shape:
        return float("inf")
    diff = np.abs(expected - got)
    if not predictor.problem_type.is_classification:
        diff = diff / np.maximum(1.0, np.abs(expected))
    diff = np.where(np.isnan(expected) & np.isnan(got), 0.0, diff)
    return float(np.max(np.nan_to_num(diff, nan=np.inf), initial=0.0))


def _in_time(deadline: float | None) -> None:
    if deadline is not None and time.time() > deadline:
        raise TimeoutError("no time left for compiling in the time allowed for packaging")
