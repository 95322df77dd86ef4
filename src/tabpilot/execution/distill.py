"""Distillation: one compiled gradient-boosted model that answers like the job's ensemble.

The teacher is the model a job would hand out for accuracy (an ensemble, a stack, a bag of
k fold models): it answers one row several times slower than one model does. The student
is one LightGBM model fitted to

- its training rows with their labels (blended with the teacher's predictions when
  TRUTH_WEIGHT < 1), and
- synthetic rows near them, labelled by the teacher's predictions alone: each is a real
  row with some of its values swapped for other rows' (SWAP_PROBABILITY per value, in the
  spirit of MUNGE, Bucila et al. 2006), so that where the labels are silent the student
  learns what the teacher learned.

A classifier fits soft labels exactly: each row is repeated once per class, weighted by
that class's probability, so that the usual log loss becomes the cross-entropy to the soft
label.

Its validation score is measured as any candidate's is, on rows it never learned from,
nor learned about: under k-fold, fold i's student learns from the other folds' rows only,
and its teacher there is the teacher's fold-i models alone (`fold_view`: each bag cut down
to its model trained without fold i). Taught by the whole teacher instead, whose bags saw
fold i's labels, it learned them through its neighbours' soft labels: on credit_g its
out-of-fold AUC was 0.85-0.87 against 0.84 on the test rows, beside the ensemble's 0.79
out of fold and 0.84 on the test rows. On a holdout the teacher never saw the holdout, and
the one student is scored on it. The model kept under k-fold is one student distilled from
every row by the whole teacher, with the folds' mean number of trees (as a `-full` refit
keeps its bag's scores); when that student would not finish in the time left (FINAL_SHARE
of the folds' time, measured), or does not, the fold students are kept instead, a bag
scored exactly as it was validated, rather than no student at all; unless the deadline cut
them short too (then the distillation fails, as before, saying so). A holdout student the
deadline cut short fails the same way.

The student's parameters are the job's best LightGBM trial's, early-stopped within
RICH_MAX_ROUNDS, with at least RICH_SYNTHETIC synthetic rows per fit, when the time left
allows (jobs/distilling.py); else the cheaper STUDENT_PARAMS. The settings were chosen on
the ensembles of the 40 s and 60 s jobs of nine tables, scored on their test rows (figures
in the issue 19 notes): the labels on real rows with two synthetic rows per real row beat
the teacher's in-sample predictions blended with 30 % of the labels (which a memorising
forest makes as sharp as the labels) on four of five tables, and one synthetic row per real
row on four of five; the best LightGBM's parameters with 10,000 synthetic rows beat
STUDENT_PARAMS on six of six (bike_sharing RMSE 35.7 against 41.2).
"""

from __future__ import annotations

import copy
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tabpilot.artifacts import package
from tabpilot.artifacts.predictor import Predictor
from tabpilot.data.split import subsample
from tabpilot.execution.base import TrialContext, TrialResult, TrialTask
from tabpilot.execution.trial import (
    PACKAGING_SECONDS,
    VALIDATION_PREDICTIONS,
    _Encoded,
    _fit_folds,
    encode_narrow,
    package_trial,
)
from tabpilot.models import FitData, get_family
from tabpilot.models.base import LOSS

FAMILY = "lightgbm"
# the student: a mid-sized LightGBM, early-stopped on each fold's validation rows
STUDENT_PARAMS = dict(learning_rate=0.1, num_leaves=15, min_child_samples=10,
                      feature_fraction=0.8, bagging_fraction=1.0, lambda_l2=1.0,
                      min_data_per_group=20, cat_smooth=10.0, max_rounds=300)
TRUTH_WEIGHT = 1.0  # share of the true label in a real row's target (the rest: teacher's)
SWAP_PROBABILITY = 0.3  # per value of a synthetic row: taken from another random row
SYNTHETIC_PER_ROW = 2.0  # synthetic rows per training row of a fit, at most MAX_SYNTHETIC
MAX_SYNTHETIC = 20_000
# a student taught with the job's best LightGBM's own parameters (jobs/distilling.py): at
# most this many rounds (early-stopped on each fold), and at least RICH_SYNTHETIC synthetic
# rows per fit when the table is small
RICH_MAX_ROUNDS = 1000
RICH_SYNTHETIC = 10_000
MAX_REAL_ROWS = 200_000  # training rows of one student (a sample of larger tables)
FINAL_SHARE = 1.5  # the student on every row, in fold fits: 5/4 the rows, 1.1x the trees
# how a k-fold job's student was kept (its last fit record's `distilled_on`): one student
# on every row, or, when that did not fit in the time left, the fold students themselves
ALL_ROWS, FOLD_STUDENTS = "all rows", "fold students"
MIN_WEIGHT = 1e-3  # a class this unlikely for a row adds nothing: its repeat is dropped
TEACHER_CHUNK_ROWS = 20_000  # teacher predictions per call, the deadline checked between
# A fit's synthetic rows are those its teacher labels in LABEL_SHARE of the fit's time (its
# rate timed on the first PROBE_ROWS), at most `synthetic_rows`: a slow teacher (a stack
# of forests, 2,000 rows a second) otherwise spent the student's whole time labelling 20,000
# rows (california at 60 s: a student of 2 trees, RMSE 105,314 against its teacher's 44,966)
LABEL_SHARE = 1 / 3
PROBE_ROWS = 500


def run_distillation(ctx: TrialContext, task: TrialTask) -> TrialResult:
    """A distillation trial (`task.distill_of`: teacher, the teacher's name; teacher_dir,
    its model directory)."""
    warnings.filterwarnings("ignore")
    started = time.time()
    spec = task.distill_of or {}
    family = get_family(FAMILY)
    teacher = package.load(spec["teacher_dir"]).predictor
    n_classes = len(ctx.classes) if ctx.classes else 0
    fit_deadline = task.soft_deadline - PACKAGING_SECONDS
    rng = np.random.default_rng(ctx.seed)
    folds = [(subsample(tr, MAX_REAL_ROWS, ctx.seed + i), va)
             for i, (tr, va) in enumerate(ctx.split.folds)]
    rows = np.unique(np.concatenate([tr for tr, _ in folds]))
    encoded = _Encoded(ctx, family.style, rows, folds, n_classes, writable_views=False)
    truth = _one_hot(ctx.y, n_classes)
    teachers = _fold_teachers(teacher, folds, ctx.split.is_cv)
    minimum = int(spec.get("min_synthetic") or 0)
    # the synthetic rows of each fit in turn: as the job labelled them (an export), or timed
    caps = iter(spec.get("synthetic") or [])
    labelled: list[dict[str, Any]] = []  # each fit's synthetic rows, as its record says

    def student_data(fit_rows: np.ndarray, valid: np.ndarray | None, deadline: float
                     ) -> FitData:
        labeller = teachers.get(id(fit_rows), teacher)
        real = ctx.features(fit_rows)
        targets = truth[fit_rows] if TRUTH_WEIGHT == 1 else (
            (1 - TRUTH_WEIGHT) * _predict(labeller, real, deadline)
            + TRUTH_WEIGHT * truth[fit_rows])
        drawn = _synthesize(real, rng, minimum)
        data = encoded.fit_data(fit_rows, valid, deadline)
        frame, synth_targets = _labelled(labeller, drawn, deadline, next(caps, None))
        labelled.append({"synthetic_rows": len(frame), "synthetic_cut": len(frame) < len(drawn)})
        data.info.update(labelled[-1])
        X_synth = encode_narrow(encoded.encoder, frame) if len(frame) else data.X[:0]
        return _soft_fit_data(data, targets, X_synth, synth_targets.reshape(
            (len(frame), *targets.shape[1:])), n_classes)

    # under k-fold the student on every row (more rows, the folds' trees) gets
    # FINAL_SHARE fold fits' time
    k = len(folds)
    folds_end = started + (fit_deadline - started) * (
        k / (k + FINAL_SHARE) if ctx.split.is_cv else 1)
    folds_started = time.time()
    estimators, infos, scores, valid_pred = _fit_folds(
        ctx, task, family, encoded.matrix, folds, student_data, folds_end, n_classes,
        fold_params=_regrown(task.params, spec.get("fold_rounds")))
    out_dir = Path(task.output_dir).parent  # beside the model, as every trial's (reports)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / VALIDATION_PREDICTIONS, valid_pred.astype(np.float32))
    if not ctx.split.is_cv and infos[0].get("stopped_by_deadline"):
        # scored honestly on the holdout, but a few trees: a candidate no one wants
        # (california at 60 s: validation RMSE 105,314 beside its teacher's 44,000)
        raise TimeoutError("the student was cut short by the deadline")
    if ctx.split.is_cv and all(i.get("stopped_by_deadline") for i in infos):
        # their trees are the deadline's count, not early stopping's, and so would be the
        # student's on every row (wine_quality at 300 s: 2 trees a fold behind a teacher
        # that labelled 500 rows a second, kept with 10 trees: log loss 1.198 against 0.84)
        raise TimeoutError(f"every fold's student was cut short by the deadline (at most "
                           f"{max(i.get('best_iteration') or 0 for i in infos)} trees)")
    if ctx.split.is_cv:
        params = family.refit_params(dict(task.params), infos)
        need = FINAL_SHARE * (time.time() - folds_started) / k
        final = _final_student(family, params, rows, student_data, fit_deadline,
                               need if spec.get("final", True) else None)
        if final is not None:
            estimators = [final]
            infos = [*infos, {"distilled_on": ALL_ROWS, "n_estimators": params["n_estimators"],
                              **labelled[-1]}]
        elif any(i.get("stopped_by_deadline") for i in infos):
            # a bag of students cut short (a few trees each) would be a candidate no one wants
            raise TimeoutError("the student on every row did not fit in the time left, and "
                               "the fold students were cut short by the deadline")
        else:  # the fold students, scored as they are: an honest bag, k times the trees
            infos = [*infos, {"distilled_on": FOLD_STUDENTS}]
    extra = {"distilled_from": spec["teacher"], "distillation": {
        "truth_weight": TRUTH_WEIGHT, "swap_probability": SWAP_PROBABILITY,
        "synthetic_per_row": SYNTHETIC_PER_ROW, "min_synthetic": minimum,
        "max_synthetic": MAX_SYNTHETIC,
        "validation": "k-fold students" if ctx.split.is_cv else "holdout"}}
    return package_trial(ctx, task, family, encoded.encoder, estimators, scores, infos,
                         started, extra)


def _final_student(family: Any, params: dict[str, Any], rows: np.ndarray, student_data: Any,
                   deadline: float, need: float | None) -> Any | None:
    """The student on every row (`params`: the folds' mean number of trees); None, and the
    fold students are kept, when `need` (its estimate: FINAL_SHARE fold fits) is more than
    the time left before `deadline`, when it runs out of time there anyway, or when `need`
    is None (the export of a job that kept its fold students)."""
    if need is None or deadline - time.time() < need:
        return None
    data = student_data(rows, None, deadline)
    final = family.fit(params, data)
    return None if data.info.get("stopped_by_deadline") else final


def _regrown(params: dict[str, Any], fold_rounds: list[int | None] | None
             ) -> list[dict[str, Any]] | None:
    """Per fold, the parameters that regrow a student the job's deadline cut short: at most
    the trees it kept (its early stopping and best tree are then the same); None: as given.
    The exported code of a distilled candidate passes the job's `fold_rounds`."""
    if not fold_rounds:
        return None
    return [dict(params) if r is None else dict(params, max_rounds=int(r))
            for r in fold_rounds]


def _fold_teachers(teacher: Any, folds: list[tuple[np.ndarray, np.ndarray]], is_cv: bool
                   ) -> dict[int, Any]:
    """Who labels each fold's student, by the id of the fold's training rows: under k-fold
    the teacher's fold models (`fold_view`); on a holdout the teacher, which never saw it."""
    if not is_cv:
        return {}
    views = {id(tr): fold_view(teacher, i, len(folds)) for i, (tr, _) in enumerate(folds)}
    if any(v is None for v in views.values()):
        raise ValueError("the teacher holds a model that is not a bag of the job's folds "
                         "(a refit on every row?); its students could not be scored without "
                         "learning from the rows they are scored on")
    return views


def fold_view(predictor: Any, fold: int, n_folds: int) -> Any | None:
    """`predictor` with each of its k-fold bags cut down to its model of fold `fold`
    (trained without that fold's rows), on the Python path; None when a part of it is not
    such a bag (a refit on every row, a holdout model). A stack keeps its level-2 model,
    fitted on out-of-fold predictions, as the ensemble keeps its weights."""
    if isinstance(predictor, Predictor):
        if len(predictor.estimators) != n_folds:
            return None
        view = copy.copy(predictor)
        view.__dict__.pop("compiled_", None)  # the compiled path averages every fold
        view.estimators = [predictor.estimators[fold]]
        return view
    members = getattr(predictor, "members", None)
    if not members:
        return None
    views = [fold_view(m, fold, n_folds) for m in members]
    if any(v is None for v in views):
        return None
    view = copy.copy(predictor)
    view.members = views
    return view


def _predict(teacher: Any, frame: pd.DataFrame, deadline: float) -> np.ndarray:
    parts = []
    for start in range(0, len(frame), TEACHER_CHUNK_ROWS):
        if time.time() >= deadline:
            raise TimeoutError("the teacher's predictions ran out of time")
        parts.append(teacher.raw_predict(frame.iloc[start: start + TEACHER_CHUNK_ROWS]))
    return np.concatenate(parts).astype(np.float64)


def _labelled(teacher: Any, frame: pd.DataFrame, deadline: float, cap: int | None
              ) -> tuple[pd.DataFrame, np.ndarray]:
    """The first rows of the synthetic `frame` and the teacher's predictions of them: as
    many as the teacher labels in LABEL_SHARE of the time left before `deadline`, its rate
    timed on the first PROBE_ROWS (at least those are labelled); with `cap` (an export
    rerunning a job's fit), that many."""
    if not len(frame) or cap == 0:
        return frame.iloc[:0], np.zeros(0)
    started = time.time()
    first = frame.iloc[:PROBE_ROWS if cap is None else min(PROBE_ROWS, cap)]
    labels = [_predict(teacher, first, deadline)]
    if cap is None:
        rate = len(first) / max(time.time() - started, 1e-6)
        cap = int(rate * LABEL_SHARE * (deadline - started))
    n = max(len(first), min(cap, len(frame)))
    if n > len(first):
        labels.append(_predict(teacher, frame.iloc[len(first):n], deadline))
    return frame.iloc[:n], np.concatenate(labels)


def synthetic_rows(n_real: int, minimum: int = 0) -> int:
    """How many synthetic rows a fit on `n_real` rows gets: SYNTHETIC_PER_ROW per row, at
    least `minimum`, at most MAX_SYNTHETIC."""
    if not n_real or not SYNTHETIC_PER_ROW:
        return 0
    return min(max(int(n_real * SYNTHETIC_PER_ROW), minimum), MAX_SYNTHETIC)


def rich_params(params: dict[str, Any]) -> dict[str, Any]:
    """A LightGBM candidate's parameters for a student: its own, early-stopped within
    RICH_MAX_ROUNDS rounds (a fixed n_estimators would stop early stopping), on squared
    error (a teacher's soft labels need not suit the candidate's loss: a stack's may be
    negative where Tweedie's may not)."""
    out = {k: v for k, v in params.items() if k not in ("n_estimators", LOSS)}
    return dict(out, max_rounds=RICH_MAX_ROUNDS)


def _synthesize(frame: pd.DataFrame, rng: np.random.Generator, minimum: int = 0
                ) -> pd.DataFrame:
    """Rows near `frame`'s (`synthetic_rows` of them): each a random row of it with each
    value, with probability SWAP_PROBABILITY, taken from another random row (dtypes and
    categories kept)."""
    n = synthetic_rows(len(frame), minimum)
    out = frame.iloc[rng.integers(len(frame), size=n)].reset_index(drop=True)
    for col in out.columns:
        swap = rng.random(n) < SWAP_PROBABILITY
        donors = frame[col].iloc[rng.integers(len(frame), size=n)].reset_index(drop=True)
        out[col] = out[col].where(~swap, donors)
    return out


def _one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    if not n_classes:
        return y.astype(np.float64)
    out = np.zeros((len(y), n_classes))
    out[np.arange(len(y)), y] = 1.0
    return out


def _soft_fit_data(data: FitData, targets: np.ndarray, X_synth: Any,
                   synth_targets: np.ndarray, n_classes: int) -> FitData:
    """`data` (a fold's real rows) with the synthetic rows added and soft targets: values
    for regression; for classification each row once per class, weighted by its
    probability (rows of weight under MIN_WEIGHT dropped)."""
    X = _stack([data.X, X_synth])
    y = np.concatenate([targets, synth_targets])
    weights = np.concatenate([np.ones(len(targets)) if data.weights is None else data.weights,
                              np.ones(len(synth_targets))])
    if n_classes:
        n = y.shape[0]
        w = (y.T * weights).ravel()  # class-major: every row for class 0, then class 1, ...
        keep = w >= MIN_WEIGHT
        at = np.tile(np.arange(n), n_classes)[keep]
        X, weights = X[at], w[keep]
        y = np.repeat(np.arange(n_classes), n)[keep]
    data.X, data.y, data.weights, data.X_writable = X, y, weights, True
    return data


def _stack(parts: list[Any]) -> Any:
    if any(sp.issparse(p) for p in parts):
        return sp.vstack([sp.csr_matrix(p) for p in parts], format="csr")
    dtype = np.result_type(*[p.dtype for p in parts])
    return np.concatenate([np.asarray(p, dtype=dtype) for p in parts])
