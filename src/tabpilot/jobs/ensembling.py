"""The job's last step: a greedy ensemble of the best candidates, kept when it scores higher.

Selection works on the candidates' saved validation predictions (out-of-fold under
k-fold), so it costs no training; its pool holds the stack (jobs/stacking.py) when the job
built one. Label metrics (F1, Accuracy, ...) are selected on log
loss, a smooth stand-in; the ensemble's own threshold is then tuned like any candidate's.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tabpilot.artifacts import package
from tabpilot.artifacts.latency import measure
from tabpilot.data.prepare import Prepared
from tabpilot.data.split import Split
from tabpilot.ensemble import EnsemblePredictor, greedy_weights
from tabpilot.execution.trial import VALIDATION_PREDICTIONS
from tabpilot.jobs import compile_cost, selection, spread
from tabpilot.jobs import status as st
from tabpilot.jobs.progress import ENSEMBLING
from tabpilot.jobs.views import leaderboard, refit_names
from tabpilot.metrics import METRICS, Metric, score, score_all, tune_threshold

if TYPE_CHECKING:
    from tabpilot.jobs.progress import Progress
    from tabpilot.store import Store

log = logging.getLogger("tabpilot.jobs.ensembling")

MAX_MEMBERS = 20  # candidates considered, best first
# Packaging loads every member (verify and unpickle: the bytes) and hard-links its files
# (next to nothing); measured on wine_quality's members, loaded machine: 0.01-0.2 s for
# 0-31 MB, 0.25 s for 124 MB, 1.2 s for a 616 MB stack; its ensemble of 1.09 GB, 2.2 s
SECONDS_PER_MEMBER = 0.1
LOAD_BYTES_PER_SECOND = 400e6
TIMING_SECONDS = 1.0  # the latency measurement's time box
# The fast ensemble's budgets when the request sets no max_latency_ms: its distinct members'
# one-row latencies, as their trials measured them, summed. The cheapest whose ensemble the
# default selection would hand out instead of the most accurate candidate (jobs/selection.py:
# FAST_SPEEDUP times faster, within its tolerance) is built; when none would be, the first,
# FAST_LATENCY_MS. Serving one row over loopback adds 0.6-1.5 ms to the model's own time
# (bench.default_model), so the HTTP goal of 2 ms leaves the model 0.5-1.4 ms; the trials'
# figures, measured while other trials run, overstate an ensemble's own (diamonds: five
# members summing to 0.99 ms answered together in 0.64 ms)
FAST_BUDGETS_MS = (0.75, 1.25, 2.0)
FAST_LATENCY_MS = FAST_BUDGETS_MS[0]
FAST_SUFFIX = "-fast"
# the fast ensemble's packaging: a few small members loaded and linked, then timed
FAST_PACKAGE_SECONDS = 0.5 + TIMING_SECONDS


@dataclass
class EnsembleResult:
    weights: dict[str, float]
    objective: float
    metrics: dict[str, float]
    threshold: float | None
    directory: Path
    latency_ms_p50: float
    throughput_rows_s: float
    model_bytes: int
    seconds: float


def selection_metric(metric: Metric, classification: bool) -> Metric:
    """The metric greedy selection climbs: log loss for a classification objective read on
    labels (accuracy, F1), whose steps are too coarse to choose by; else the objective."""
    return METRICS["LogLoss"] if metric.needs_labels and classification else metric


@dataclass(frozen=True)
class Budget:
    """A bound on an ensemble's one-row latency: its members' own (measured in their
    trials), summed over the distinct members, at most `limit_ms`."""

    latency_ms: dict[str, float]
    limit_ms: float


def select(prepared: Prepared, split: Split, ranked: list[tuple[str, Path]],
           budget: Budget | None = None) -> dict[str, float] | None:
    """Member weights, or None when the ensemble would be a single model. With a
    `budget`, only candidates with a measured latency take part, within its limit."""
    y = prepared.y[split.validation_rows()]
    preds, names = [], []
    for name, cand_dir in ranked[:MAX_MEMBERS]:
        path = cand_dir / VALIDATION_PREDICTIONS
        if path.is_file() and (budget is None or name in budget.latency_ms):
            preds.append(np.load(path).astype(np.float64))
            names.append(name)
    if len(preds) < 2:
        return None
    chooser = selection_metric(prepared.metric, prepared.problem_type.is_classification)
    weights = greedy_weights(
        preds, lambda p: chooser.sign() * score(chooser, y, p),
        costs=None if budget is None else [budget.latency_ms[n] for n in names],
        budget=None if budget is None else budget.limit_ms)
    chosen = {n: float(w) for n, w in zip(names, weights, strict=True) if w > 0}
    return chosen if len(chosen) > 1 else None


# a selected ensemble: weights, validation targets and predictions, objective, threshold
Selection = tuple[dict[str, float], np.ndarray, np.ndarray, float, float | None]


def evaluate(prepared: Prepared, split: Split, ranked: list[tuple[str, Path]],
             budget: Budget | None = None) -> Selection | None:
    """Weights, validation targets and predictions, objective and threshold of the
    selected ensemble."""
    weights = select(prepared, split, ranked, budget)
    return None if weights is None else scored(prepared, split, dict(ranked), weights)


def scored(prepared: Prepared, split: Split, dirs: dict[str, Path],
           weights: dict[str, float]) -> Selection:
    """The selection of the ensemble of these `weights` (candidates' folders in `dirs`)."""
    y = prepared.y[split.validation_rows()]
    pred = sum(w * np.load(dirs[n] / VALIDATION_PREDICTIONS).astype(np.float64)
               for n, w in weights.items())
    metric = prepared.metric
    threshold = tune_threshold(metric, y, pred) if prepared.classes and len(
        prepared.classes) == 2 else None
    return weights, y, pred, score(metric, y, pred, None, threshold), threshold


def full_weights(weights: dict[str, float], done: set[str]) -> dict[str, float] | None:
    """An ensemble's `weights` with each member whose `-full` twin is among the completed
    candidates `done` replaced by it; None when none has one."""
    twins = {selection.full_twin(n, done): w for n, w in weights.items()}
    return None if twins.keys() == weights.keys() else twins


def would_win(prepared: Prepared, split: Split, ranked: list[tuple[str, Path]],
              best_value: float) -> bool:
    """Whether an ensemble of the candidates so far beats the best one (no packaging)."""
    found = evaluate(prepared, split, ranked)
    return found is not None and prepared.metric.is_better(found[3], best_value)


def fast_budget(prepared: Prepared, split: Split, ranked: list[tuple[str, Path]],
                latency: dict[str, float], best_obj: float, best_ms: float,
                error_of: Callable[[np.ndarray, float | None], float | None],
                until: float = math.inf) -> tuple[float, Selection | None]:
    """The cheapest of FAST_BUDGETS_MS whose budgeted ensemble the default selection would
    hand out instead of the most accurate candidate (objective `best_obj`, `best_ms` a
    row): within FAST_TOLERANCE of its objective, and within one standard error of the
    difference where `error_of(predictions, threshold)` knows it, for a budget at least
    FAST_SPEEDUP times below its latency. FAST_LATENCY_MS when none would be, or when
    time.time() reaches `until` before one is found. With the budget, its selection (None:
    one candidate or none fits it), which packaging it then takes as made."""
    greater = prepared.metric.greater_is_better
    tried: dict[float, Selection | None] = {}
    for limit in FAST_BUDGETS_MS:
        if limit * selection.FAST_SPEEDUP > best_ms or time.time() >= until:
            break
        found = tried[limit] = evaluate(prepared, split, ranked, Budget(latency, limit))
        if found is None:
            continue
        _, _, pred, objective, threshold = found
        lost = selection.shortfall(best_obj, objective, greater)
        # the standard error (a bootstrap) only for an ensemble the relative rule accepts
        if selection.tolerated(lost, best_obj, None) and \
                selection.tolerated(lost, best_obj, error_of(pred, threshold)):
            return limit, found
    if FAST_LATENCY_MS not in tried:
        tried[FAST_LATENCY_MS] = evaluate(prepared, split, ranked,
                                          Budget(latency, FAST_LATENCY_MS))
    return FAST_LATENCY_MS, tried[FAST_LATENCY_MS]


@dataclass
class _Chosen:
    """The selected ensemble whose packaging fits in the time left."""

    weights: dict[str, float]
    y: np.ndarray
    pred: np.ndarray
    objective: float
    threshold: float | None
    member_dirs: list[Path]
    left_out: list[str]  # candidates left out: compiling them did not fit


def packaging_seconds(member_dirs: list[Path]) -> float:
    """Loading, linking and timing the members, their compiles apart."""
    return SECONDS_PER_MEMBER * len(member_dirs) + TIMING_SECONDS + sum(
        package.directory_bytes(d) for d in member_dirs) / LOAD_BYTES_PER_SECOND


def choose(prepared: Prepared, split: Split, ranked: list[tuple[str, Path]],
           best_value: float | None, deadline: float, budget: Budget | None = None,
           selected: Selection | None = None) -> _Chosen | None:
    """The ensemble to package, if one beats `best_value` (None: any) and its packaging
    fits; within `budget` when one is given. `selected`: the selection of `ranked` within
    `budget`, when it was made already (the fast ensemble's budget ladder).

    A member without a compiled path is compiled at packaging; uncompiled, it answers on
    the Python path (a 228 MB one: 126 ms a row, against a few ms). When a compile does
    not fit before `deadline`, the costliest is left out of the pool and the weights are
    selected again without it: the job's model should answer fast.
    """
    left_out: list[str] = []
    dirs = dict(ranked)
    while True:
        found = selected if selected is not None and not left_out else evaluate(
            prepared, split, [(n, d) for n, d in ranked if n not in left_out], budget)
        if found is None:
            if left_out:
                log.info("no ensemble: without %s, one candidate alone is selected",
                         ", ".join(left_out))
            return None
        weights, y, pred, objective, threshold = found
        if not prepared.metric.is_better(objective, best_value):
            log.info("ensemble %.5f does not beat the best candidate %.5f%s", objective,
                     best_value, f" (left out: {', '.join(left_out)})" if left_out else "")
            return None
        member_dirs = [compile_cost.member_source(dirs[n]) for n in weights]
        compiles = compile_cost.pending(member_dirs)
        loading = packaging_seconds(member_dirs)
        left = deadline - time.time()
        if loading + sum(c.seconds for c in compiles) <= left:
            return _Chosen(weights, y, pred, objective, threshold, member_dirs, left_out)
        if not compiles or loading > left:
            log.warning("no time left to package the ensemble of %d members (%.1fs needed, "
                        "%.1fs left)", len(weights), loading + sum(c.seconds for c in compiles),
                        left)
            return None
        costliest = max(compiles, key=lambda c: c.seconds)
        name = list(weights)[costliest.member]
        log.warning("leaving %s out of the ensemble: compiling its %s model (%.0f MB, about "
                    "%.1fs) does not fit in the %.1fs left, and it would answer on the Python "
                    "path", name, costliest.family, costliest.bytes / 1e6, costliest.seconds,
                    left)
        left_out.append(name)


def build(prepared: Prepared, split: Split, ranked: list[tuple[str, Path]],
          best_value: float | None, out: Path, deadline: float, budget: Budget | None = None,
          selected: Selection | None = None) -> EnsembleResult | None:
    """Select (unless `selected`, as `choose` takes it), score and package the ensemble if
    it beats `best_value` in time (within `budget`, when given)."""
    started = time.time()
    chosen = choose(prepared, split, ranked, best_value, deadline, budget, selected)
    if chosen is None:
        return None
    weights, metric = chosen.weights, prepared.metric
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out.parent / VALIDATION_PREDICTIONS, chosen.pred.astype(np.float32))
    predictor = EnsemblePredictor([m.predictor for m in package.load_many(chosen.member_dirs)],
                                  list(weights.values()), list(weights), prepared.problem_type,
                                  prepared.classes, chosen.threshold)
    metrics = score_all(prepared.problem_type, chosen.y, chosen.pred, None, chosen.threshold)
    metadata = {
        "candidate": out.parent.name, "algorithm": "Ensemble", "family": "ensemble",
        "members": weights, "problem_type": prepared.problem_type.value,
        "objective_metric": metric.name, "objective_value": chosen.objective,
        "validation_metrics": metrics, "threshold": chosen.threshold,
        "classes": prepared.classes, "input_schema": prepared.schema.to_dict(),
        "features": predictor.features,
        **({"latency_budget_ms": budget.limit_ms} if budget is not None else {}),
        **({"left_out_uncompiled": chosen.left_out} if chosen.left_out else {}),
    }
    # members hard-linked from their candidates' model directories, not pickled again;
    # those compiled here are attached in memory too, so it is timed as saved (loading it
    # again would hash and unpickle every member a second time); compiles stop in time
    # for the timing
    package.save(predictor, metadata, out, sample=prepared.X.iloc[split.folds[0][1][:500]],
                 deadline=deadline - TIMING_SECONDS, members=chosen.member_dirs)
    warn_uncompiled(out, "ensemble")
    timing = measure(package.Model(predictor, metadata, out),
                     prepared.X.iloc[split.folds[0][1][:200]], seconds=TIMING_SECONDS)
    return EnsembleResult(weights, chosen.objective, metrics, chosen.threshold, out,
                          timing["latency_ms_p50"], timing["throughput_rows_s"],
                          package.directory_bytes(out), time.time() - started)


def record_built(store: Store, job: str, name: str, result: EnsembleResult | Any) -> None:
    """A built composite candidate (an ensemble, a stack: `result` has EnsembleResult's
    scores, timing and directory) recorded as completed."""
    store.update_candidate(
        job, name, metrics=result.metrics, status=st.CANDIDATE_COMPLETED,
        objective=result.objective, threshold=result.threshold, fit_seconds=result.seconds,
        latency_ms_p50=result.latency_ms_p50, throughput_rows_s=result.throughput_rows_s,
        model_bytes=result.model_bytes, artifact_dir=str(result.directory), ended=time.time())


def warn_uncompiled(directory: Path, what: str) -> list[dict[str, Any]]:
    """The tree models inside the packaged composite at `directory` left on the Python
    path (its metadata's compiled record lists them), each with a warning."""
    record = json.loads((directory / package.METADATA).read_text()).get("compiled") or {}
    uncompiled = list(record.get("uncompiled", []))
    for entry in uncompiled:
        log.warning("the %s %s holds %s uncompiled (%s): it answers on the Python path",
                    what, directory.parent.name, entry.get("candidate") or
                    f"member {entry['member']}", entry.get("reason"))
    return uncompiled


class Ensembling:
    """The job runner's part (a mixin of JobRunner: its store, request and job name)."""

    def _pool(self, job_dir: Path) -> list[tuple[str, Path]]:
        """The candidates an ensemble selects from, best first: all but ensembles (a
        resumed job's earlier ensemble is not nested in its new one)."""
        family = {c.name: c.family for c in self.store.list_candidates(self.name)}
        return [(n, d) for n, d in self._ranked(job_dir) if family.get(n) != "ensemble"]

    def _ensemble_wins(self, prepared: Prepared, split: Split, job_dir: Path,
                       progress: Progress) -> bool:
        if progress.best_value is None or progress.done == self._ensemble_checked_at:
            return False  # checked already with these candidates
        if self.request.max_latency_ms is not None:
            return False  # an ensemble seldom meets a latency bound: keep the refit's time
        self._ensemble_checked_at = progress.done
        try:
            return would_win(prepared, split, self._pool(job_dir), progress.best_value)
        except Exception:
            log.exception("checking the ensemble failed")
            return False

    def _ensemble(self, prepared: Prepared, split: Split, job_dir: Path, progress: Progress,
                  deadline: float) -> bool:
        """Add a greedy ensemble of the best candidates when it beats them; True if added."""
        if progress.best_value is None or time.time() >= deadline:
            return False
        self._phase(st.TRAINING_MODELS, ENSEMBLING)
        result = self._build_ensemble(prepared, split, job_dir, progress.best_value, deadline)
        # none, or a candidate on the leaderboard too slow to be the model
        return result is not None and self._hand_out(progress, *result)

    def _fast_ensemble(self, prepared: Prepared, split: Split, job_dir: Path,
                       progress: Progress, deadline: float) -> bool:
        """When the most accurate candidate answers one row slower than the fast budget
        (the request's max_latency_ms, else the cheapest of FAST_BUDGETS_MS the default
        selection would take: `fast_budget`), a second greedy ensemble of the candidates
        whose summed one-row latencies fit in it: `ensemble-NNN-fast`, a candidate of its
        own that the default selection weighs like any other. True when it became the
        job's best."""
        if progress.best_value is None or time.time() >= deadline:
            return False
        board = leaderboard(self.store, self.name)  # completed candidates, best first
        limit = self.request.max_latency_ms or FAST_LATENCY_MS
        if board.empty or selection.within(board["latency_ms_p50"].iloc[0], limit):
            return False  # the most accurate answers fast already
        ms = board["latency_ms_p50"].astype(float)
        timed = np.isfinite(ms)
        latency = dict(zip(board["candidate"][timed], ms[timed], strict=True))
        selected = None  # the ladder's selection at its budget, packaged as made
        if self.request.max_latency_ms is None:
            limit, selected = fast_budget(
                prepared, split, self._pool(job_dir), latency,
                float(board["objective"].iloc[0]), float(ms.iloc[0]),
                self._difference_error(prepared, split, job_dir,
                                       str(board["candidate"].iloc[0])),
                until=deadline - FAST_PACKAGE_SECONDS)
            if selected is None:
                return False  # one candidate or none within the budget: no ensemble
        result = self._build_ensemble(prepared, split, job_dir, None, deadline,
                                      Budget(latency, limit), FAST_SUFFIX, selected)
        return result is not None and \
            prepared.metric.is_better(result[1].objective, progress.best_value) and \
            self._hand_out(progress, *result)

    def _difference_error(self, prepared: Prepared, split: Split, job_dir: Path, best: str
                          ) -> Callable[[np.ndarray, float | None], float | None]:
        """(validation predictions, threshold) -> the standard error of the difference of
        their objective from candidate `best`'s (jobs/spread.py), None when unknown."""
        y = prepared.y[split.validation_rows()]
        metric = prepared.metric.name
        base: list[np.ndarray | None] = []

        def error_of(pred: np.ndarray, threshold: float | None) -> float | None:
            if not base:  # resampled once, when first needed
                path = job_dir / "candidates" / best / VALIDATION_PREDICTIONS
                row = self.store.get_candidate(self.name, best)
                base.append(spread.resampled(prepared.problem_type, metric, y, np.load(path),
                                             row.threshold) if path.is_file() else None)
            return spread.difference_error(
                base[0], spread.resampled(prepared.problem_type, metric, y, pred, threshold))

        return error_of

    def _hand_out(self, progress: Progress, name: str, result: EnsembleResult) -> bool:
        """Make the ensemble the job's best when it answers within the request's bound;
        whether it did."""
        if not selection.within(result.latency_ms_p50, self.request.max_latency_ms):
            return False
        progress.best_value, progress.best_candidate = result.objective, name
        self.store.update_job(self.name, best_candidate=name)
        return True

    def _full_ensemble(self, prepared: Prepared, split: Split, job_dir: Path,
                       progress: Progress, deadline: float) -> bool:
        """After the most accurate candidate's bags were collapsed (refits.py):
        `ensemble-NNN-full`, a candidate of its own that the default selection weighs like
        any other. It is the most accurate ensemble with each member that has a `-full`
        twin (a refit, a stack's twin) replaced by it at the same weight (`full_weights`):
        the twins carry their bags' out-of-fold predictions, so it scores as that
        ensemble does. A greedy ensemble of the twins and the bags never collapsed
        (selection.KEEP_BAGGED) is built instead when it scores better (the most accurate
        candidate was a stack, or its ensemble kept bags that were not collapsed). On a
        holdout, where a refit buys accuracy and not speed, the ensemble over the twins is
        kept as it was selected whenever it has them: selected again on the same holdout,
        a greedy one took in an uncompiled MLP for 0.14 % of RMSE and 1.3 ms a row
        (bike_sharing_hourly, 300 s). True when it became the job's best."""
        if time.time() >= deadline:
            return False
        rows = {c.name: c for c in self.store.list_candidates(self.name)}
        ranked = self._ranked(job_dir)
        done = {n for n, _ in ranked}
        refit = {n for n in done if rows[n].trained_on == selection.REFIT_FULL}
        kept = {n for n in done if rows[n].algorithm in selection.KEEP_BAGGED}
        # no ensemble in a pool (as `_pool`, from the rows read here); bags of the kind
        # never collapsed stand for themselves
        pool = [(n, d) for n, d in ranked
                if rows[n].family != "ensemble" and n in refit | kept]
        greedy = evaluate(prepared, split, pool) \
            if len(pool) >= 2 and not refit.isdisjoint(n for n, _ in pool) else None
        top = next((n for n, _ in ranked if rows[n].family == "ensemble"
                    and n not in refit), None)
        twins = None if top is None else full_weights(
            (rows[top].params or {}).get("members", {}), done)
        chosen, dirs, parent = greedy, dict(ranked), None
        if twins is not None and dirs.keys() >= twins.keys():
            same = scored(prepared, split, dirs, twins)
            if greedy is None or not split.is_cv or \
                    not prepared.metric.is_better(greedy[3], same[3]):
                chosen, pool, parent = same, [(n, dirs[n]) for n in twins], top
        if chosen is None:
            return False
        result = self._build_ensemble(prepared, split, job_dir, None, deadline,
                                      suffix=selection.FULL_SUFFIX, pool=pool, selected=chosen,
                                      refit_of=parent)
        return result is not None and \
            prepared.metric.is_better(result[1].objective, progress.best_value) and \
            self._hand_out(progress, *result)

    def _build_ensemble(self, prepared: Prepared, split: Split, job_dir: Path,
                        best_value: float | None, deadline: float, budget: Budget | None = None,
                        suffix: str = "", selected: Selection | None = None,
                        pool: list[tuple[str, Path]] | None = None, refit_of: str | None = None
                        ) -> tuple[str, EnsembleResult] | None:
        """Build, package and record an ensemble candidate (`build`, with `selected` when
        its selection was made already) from `pool` (default: `_pool`); its name and
        result, None when there is none (or building it failed: the single candidates
        stay, an ensemble is a bonus). `refit_of`: the ensemble whose members' twins it
        holds at the same weights (selection.REFIT_OF: never handed out in its place)."""
        ranked = self._pool(job_dir) if pool is None else pool
        number = 1 + max((c.number for c in self.store.list_candidates(self.name)), default=0)
        name = f"ensemble-{number:03d}{suffix}"
        try:
            result = build(prepared, split, ranked, best_value,
                           job_dir / "candidates" / name / "model", deadline, budget, selected)
        except Exception:
            log.exception("building the ensemble %s failed", name)
            return None
        if result is None:
            return None
        params: dict[str, Any] = {"members": result.weights}
        if budget is not None:
            params["latency_budget_ms"] = budget.limit_ms
        if refit_of is not None:
            params[selection.REFIT_OF] = refit_of
        # made of bags collapsed into one model each: their scores, carried over
        refit = refit_names(self.store, self.name)
        self.store.add_candidate(job=self.name, name=name, number=number, algorithm="Ensemble",
                                 family="ensemble", params=params,
                                 source="ensemble", status=st.CANDIDATE_IN_PROGRESS,
                                 trained_on=selection.REFIT_FULL if refit & set(result.weights)
                                 else "train")
        record_built(self.store, self.name, name, result)
        return name, result
