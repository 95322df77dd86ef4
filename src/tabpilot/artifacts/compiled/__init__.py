"""Fast inference: a compiled path for tree models, beside the Python one.

At packaging (`package.save` with sample rows) a LightGBM, XGBoost, CatBoost,
RandomForest or ExtraTrees candidate, one model or a bag of fold models, is flattened
into arrays (forest.py) that a small C kernel (kernel.c, built once per machine) scores;
a one-row request is encoded straight to floats (rows.py), text columns by the
encoder's vectorizers, densified. The compiled path is written into the model directory only when it
gives the Python path's predictions on the sample rows plus a row of missing values and
a row of unseen categories: the same labels, probabilities and values within 1e-6.
Otherwise, or when it would take too long, nothing is written and metadata.json's
"compiled" entry says why. An ensemble keeps its members' compiled paths.

    model/compiled.npz          the forest (plain arrays, no pickle)
    model/compiled-member-<i>.npz   an ensemble's: member i's forest
    model/compiled-kernel.so    the kernel it was checked with (for machines without a compiler)

`load` attaches the compiled path when those files are there and the kernel loads on
this machine; any failure leaves the Python path, with the reason logged. Members of an
ensemble with equal encoders share one row encoder, so a request is encoded once for them.
Set TABPILOT_COMPILED=0 to use the Python path everywhere.
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

from tabpilot.artifacts.compiled import catboost, lightgbm, sklearn, xgboost
from tabpilot.artifacts.compiled.builder import ForestBuilder
from tabpilot.artifacts.compiled.forest import Forest, Unsupported
from tabpilot.artifacts.compiled.native import Kernel, KernelUnavailable, library
from tabpilot.artifacts.compiled.rows import RowEncoder

log = logging.getLogger("tabpilot.artifacts.compiled")

ENGINE = "tabpilot-trees"
FOREST_FILE = "compiled.npz"
KERNEL_FILE = "compiled-kernel.so"
TOLERANCE = 1e-6  # on probabilities; relative (floor 1) on regression values
SINGLE_ROW_CHECKS = 8  # sample rows also checked one at a time (the one-row encoder)
MAX_NODES = 5_000_000  # larger forests are left to the Python path (memory, build time)
CONVERTERS = {"lightgbm": lightgbm.add, "xgboost": xgboost.add, "catboost": catboost.add,
              "random_forest": sklearn.add, "extra_trees": sklearn.add}
ABSENT_IS_MISSING = {"xgboost"}  # families reading a sparse (text) matrix's zeros as missing
CHUNK_VALUES = 1 << 22  # a large batch is encoded densely this many values at a time

__all__ = ["FOREST_FILE", "KERNEL_FILE", "CompiledPredictor", "KernelUnavailable", "Mismatch",
           "attach", "build_forest", "check", "enabled", "package", "single_predictors"]


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

    A candidate is compiled and checked on `sample`. An ensemble keeps the compiled
    paths its members were loaded with (each checked when the member was packaged); with
    `sample`, members without one (their trial ran out of time) are compiled now.
    """
    if getattr(predictor, "members", None) is not None:
        return _package_members(predictor, directory, sample, deadline)
    if sample is None:
        return None
    compiled, record = _compile(predictor, sample, deadline)
    if compiled is not None:
        compiled.forest.save(directory / FOREST_FILE)
        shutil.copyfile(compiled.kernel.path, directory / KERNEL_FILE)
    return record


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
    record: dict[str, Any] = {"engine": ENGINE, **({"compiled_here": here} if here else {})}
    if kernel is None:
        return {**record, "status": "python", "reason": "no member has a compiled path"}
    shutil.copyfile(kernel, directory / KERNEL_FILE)
    compiled = [i for i in range(len(members)) if (directory / member_file(i)).exists()]
    return {**record, "status": "compiled", "members": compiled}


def member_file(i: int) -> str:
    return f"compiled-member-{i}.npz"


def files(names: Any) -> list[str]:
    """The compiled path's forests among a model directory's file names."""
    return [n for n in names if n == FOREST_FILE or (n.startswith("compiled-member-")
                                                     and n.endswith(".npz"))]


def attach(predictor: Any, directory: Path) -> str | None:
    """Give a loaded predictor (or the single candidates inside an ensemble or stack) its
    compiled path; returns why not, or None when attached."""
    if not enabled():
        return "disabled by TABPILOT_COMPILED"
    targets = [(predictor, directory / FOREST_FILE)] \
        if getattr(predictor, "members", None) is None else \
        [(m, directory / member_file(i)) for i, m in enumerate(single_predictors(predictor))]
    try:
        kernel = library(bundled=directory / KERNEL_FILE)
        shared = _shared_rows([t for t, _ in targets])
        for target, path in targets:
            if path.is_file():
                target.compiled_ = CompiledPredictor(target, Forest.load(path), kernel,
                                                     shared[id(target)])
        return None
    except (KernelUnavailable, OSError, ValueError, KeyError) as exc:
        for target, _ in targets:
            target.__dict__.pop("compiled_", None)
        log.warning("%s: using the Python path (%s)", directory, exc)
        return str(exc)


def _shared_rows(predictors: list[Any]) -> dict[int, RowEncoder]:
    """One encoder and RowEncoder per distinct encoder (equal pickles) among an ensemble's
    members: members with equal encoders get the same object, so that a request is
    encoded once for them (the Python path's encoding as well)."""
    by_state: dict[bytes, RowEncoder] = {}
    shared = {}
    for p in predictors:
        encoder = getattr(p, "encoder", None)
        if encoder is None:  # not a single candidate (a nested ensemble)
            continue
        state = pickle.dumps(encoder, protocol=pickle.HIGHEST_PROTOCOL)
        if state not in by_state:
            by_state[state] = RowEncoder(encoder)
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
            raise Unsupported(f"over {MAX_NODES:,} tree nodes")
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
