"""The job's stacking layer: a level-2 candidate over the best level-1 candidates.

It runs after the search and before the greedy ensemble, whose pool then holds the stack
too (AutoGluon's weighted ensemble over its last layer). It costs no level-1 training:
the stacker learns from the candidates' saved validation predictions (out-of-fold under
k-fold), and scores itself out-of-fold over the same folds (tabpilot.ensemble.stacking).
The stack is packaged like the ensemble, with its members inside, and becomes a
candidate of its own (`stack-NNN`, algorithm "Stacking"). It never costs the job: when
time is short it is skipped with a logged reason, and a failure is logged and ignored.

A mixin of JobRunner (it uses the runner's store, request and job name).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tabpilot.artifacts import load, package
from tabpilot.artifacts.latency import measure
from tabpilot.data.prepare import Prepared
from tabpilot.data.split import Split
from tabpilot.ensemble import StackPredictor
from tabpilot.ensemble.stacking import (
    HOLDOUT_FOLDS,
    STACKER_PARAMS,
    StackFit,
    fit_stack,
    make_stacker,
    prune,
    stack_features,
    stacking_folds,
)
from tabpilot.execution.trial import VALIDATION_PREDICTIONS
from tabpilot.jobs import compile_cost, selection
from tabpilot.jobs import status as st
from tabpilot.jobs.ensembling import TIMING_SECONDS, record_built, warn_uncompiled
from tabpilot.metrics import score, score_all, tune_threshold

if TYPE_CHECKING:
    from tabpilot.jobs.progress import Progress

log = logging.getLogger("tabpilot.jobs.stacking")

AUTO_STACKING = True  # whether `stacking: auto` stacks in ensembling mode
MAX_MEMBERS = 6  # level-1 candidates stacked: each adds its latency to the stack's
# a candidate slower than this per row is not stacked; a tighter bound cost accuracy (at
# 100 ms, extra trees left wine_quality's stack: test log loss 0.816 -> 0.859)
SLOW_MEMBER_MS = 1000.0
# loading one member (its files are hard-linked into the stack, not re-saved): wine_quality's
# six, 616 MB with two forest bags, loaded in 1.2-1.35 s on a loaded machine
SECONDS_PER_MEMBER = 0.25
PACKAGE_SECONDS = 1.5  # saving the stack and timing its latency (1 s of it)
LEVEL_2 = frozenset({"ensemble", "stack"})  # families that combine candidates


class Skipped(Exception):
    """The stack was not built, for the reason given (not an error)."""


def resolve(setting: str, mode: str, max_latency_ms: float | None) -> bool:
    """Whether the job stacks: `on` always, `off` never, `auto` in ensembling mode unless a
    latency bound is set (a stack answers no faster than all its members together)."""
    if setting == "auto":
        return AUTO_STACKING and mode == "ensembling" and max_latency_ms is None
    return setting == "on"


@dataclass
class StackResult:
    members: list[str]
    objective: float
    metrics: dict[str, float]
    threshold: float | None
    directory: Path
    latency_ms_p50: float
    throughput_rows_s: float
    model_bytes: int
    seconds: float
    params: dict[str, Any]


def packaging_seconds(n_members: int) -> float:
    """About the time to load a stack's members and package it (no compiles)."""
    return SECONDS_PER_MEMBER * n_members + PACKAGE_SECONDS


def choose_members(ranked: list[tuple[str, Path, str, float | None]], limit: int = MAX_MEMBERS
                   ) -> list[tuple[str, Path]]:
    """Up to `limit` level-1 candidates (name, folder, family, latency ms; best first) with
    saved validation predictions: the best of each family first, since different
    algorithms err differently and that is what a stacker uses, then the next best
    overall. The stack answers a row by asking every member, so slow ones are left out."""
    usable = [(n, d, f) for n, d, f, ms in ranked
              if f not in LEVEL_2 and (d / VALIDATION_PREDICTIONS).is_file()
              and (ms is None or ms <= SLOW_MEMBER_MS)]
    firsts: dict[str, str] = {}
    for name, _, family in usable:
        firsts.setdefault(family, name)
    order = [n for n, _, _ in usable if n in firsts.values()] + \
        [n for n, _, _ in usable if n not in firsts.values()]
    dirs = {n: d for n, d, _ in usable}
    return [(n, dirs[n]) for n in order[:limit]]


def stacker_params(prepared: Prepared, split: Split, seed: int) -> dict[str, Any]:
    """What the candidate records of its stacker (the notebook rebuilds it from this)."""
    model = make_stacker(prepared.problem_type)[-1]
    features = {"binary": "logit", "multiclass": "centred log-probabilities",
                "regression": "values"}[prepared.problem_type.value]
    folds: dict[str, Any] = {"kind": "job"} if split.is_cv else \
        {"kind": "holdout", "n_folds": HOLDOUT_FOLDS, "seed": seed}
    return {"stacker": type(model).__name__,
            "stacker_params": dict(STACKER_PARAMS[prepared.problem_type]),
            "stack_features": features, "stack_folds": folds}


def build(prepared: Prepared, split: Split, ranked: list[tuple[str, Path, str, float | None]],
          out: Path, deadline: float, seed: int) -> StackResult:
    """Fit, score (out of fold) and package the stack; Skipped when it cannot be built."""
    started = time.time()
    members, needed, left_out = _fitting_members(ranked, deadline - started)
    y = prepared.y[split.validation_rows()]
    preds = [np.load(d / VALIDATION_PREDICTIONS).astype(np.float64) for _, d in members]
    if not all(np.isfinite(p).all() for p in preds):
        raise Skipped("a member's validation predictions are not all finite")
    classification = prepared.problem_type.is_classification
    n_classes = len(prepared.classes or []) if classification else 0
    folds = stacking_folds(split, y, classification, seed)
    metric = prepared.metric
    sign = 1.0 if metric.greater_is_better else -1.0

    def fit_score(kept: list[int]) -> tuple[float, StackFit]:
        fit = fit_stack(stack_features([preds[i] for i in kept], prepared.problem_type), y,
                        folds, prepared.problem_type, n_classes, deadline - needed)
        threshold = tune_threshold(metric, y, fit.oof) if n_classes == 2 else None
        return sign * score(metric, y, fit.oof, None, threshold), fit

    try:
        first = fit_score(list(range(len(members))))
    except TimeoutError as exc:
        raise Skipped(str(exc)) from None
    latency = {n: ms or 0.0 for n, _, _, ms in ranked}
    kept, fitted, _ = prune([latency[n] for n, _ in members], fit_score, *first)
    pruned = [n for i, (n, _) in enumerate(members) if i not in kept]
    if pruned:
        log.info("the stack scores no worse without %s: pruned", ", ".join(pruned))
    members = [members[i] for i in kept]
    threshold = tune_threshold(metric, y, fitted.oof) if n_classes == 2 else None
    objective = score(metric, y, fitted.oof, None, threshold)
    metrics = score_all(prepared.problem_type, y, fitted.oof, None, threshold)
    names = [n for n, _ in members]
    params = {"members": names, **({"pruned": pruned} if pruned else {}),
              **stacker_params(prepared, split, seed)}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out.parent / VALIDATION_PREDICTIONS, fitted.oof.astype(np.float32))
    sources = [compile_cost.member_source(d) for _, d in members]
    loaded = [load(source).predictor for source in sources]
    predictor = StackPredictor(loaded, names, fitted.model, prepared.problem_type,
                               prepared.classes, threshold)
    metadata = {
        "candidate": out.parent.name, "algorithm": "Stacking", "family": "stack",
        **params, "problem_type": prepared.problem_type.value,
        "objective_metric": metric.name, "objective_value": objective,
        "validation_metrics": metrics, "threshold": threshold, "classes": prepared.classes,
        "input_schema": prepared.schema.to_dict(), "features": predictor.features,
        **({"left_out_uncompiled": left_out} if left_out else {}),
    }
    # members hard-linked from their candidates' model directories, not pickled again;
    # those without a compiled path are compiled into their copies, in time for the timing
    package.save(predictor, metadata, out, sample=prepared.X.iloc[split.folds[0][1][:500]],
                 deadline=deadline - TIMING_SECONDS, members=sources)
    warn_uncompiled(out, "stack")
    # timed as saved: its members were loaded with their compiled paths, as a load of the
    # stack attaches them, so this spares unpickling every member a second time
    timing = measure(package.Model(predictor, metadata, out), prepared.X.iloc[
        split.folds[0][1][:200]])
    return StackResult(names, objective, metrics, threshold, out, timing["latency_ms_p50"],
                       timing["throughput_rows_s"], package.directory_bytes(out),
                       time.time() - started, params)


# what a stack's twin over `-full` members keeps of its metadata (the rest is packaging's)
KEPT_METADATA = ("algorithm", "family", "problem_type", "objective_metric", "objective_value",
                 "validation_metrics", "threshold", "classes", "input_schema", "features",
                 "stacker", "stacker_params", "stack_features", "stack_folds", "pruned")


def build_full(stack_dir: Path, fulls: dict[str, Path], out: Path, prepared: Prepared,
               split: Split, deadline: float) -> StackResult:
    """The stack at `stack_dir` over other models of its members (`fulls`: name -> the
    model directory to link, `compile_cost.member_source`, in its members' order: their
    refits on every row, or a bag never collapsed): the same level-2 model, whose features
    are the members' predictions; its validation scores and out-of-fold predictions
    carried over, as its members' are."""
    started = time.time()
    stack = load(stack_dir / "model")
    names, full_dirs = list(fulls), list(fulls.values())
    predictor = StackPredictor([load(d).predictor for d in full_dirs], names,
                               stack.predictor.stacker, prepared.problem_type,
                               prepared.classes, stack.predictor.threshold)
    metadata = {**{k: stack.metadata[k] for k in KEPT_METADATA if k in stack.metadata},
                "candidate": out.parent.name, "members": names, "refit_of": stack_dir.name}
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(stack_dir / VALIDATION_PREDICTIONS, out.parent / VALIDATION_PREDICTIONS)
    package.save(predictor, metadata, out, sample=prepared.X.iloc[split.folds[0][1][:500]],
                 deadline=deadline - TIMING_SECONDS, members=full_dirs)
    warn_uncompiled(out, "stack")
    timing = measure(package.Model(predictor, metadata, out), prepared.X.iloc[
        split.folds[0][1][:200]])
    return StackResult(names, metadata["objective_value"], metadata["validation_metrics"],
                       metadata.get("threshold"), out, timing["latency_ms_p50"],
                       timing["throughput_rows_s"], package.directory_bytes(out),
                       time.time() - started, {})


def twin_members(members: list[str], completed: set[str]) -> list[str] | None:
    """A stack twin's members: each of the stack's `members` replaced by its `-full` twin
    where that is among the `completed` candidates, else kept as it is; None when none has
    a twin, or a member is not completed."""
    fulls = [selection.full_twin(m, completed) for m in members]
    return fulls if fulls != members and completed.issuperset(fulls) else None


def _fitting_members(ranked: list[tuple[str, Path, str, float | None]], left: float
                     ) -> tuple[list[tuple[str, Path]], float, list[str]]:
    """The members to stack, the seconds their packaging needs and the candidates left
    out: a member without a compiled path is compiled at packaging, and when that does
    not fit in the `left` seconds the costliest is left out and the members chosen again
    (uncompiled, it would answer on the Python path). Skipped when no two fit."""
    left_out: list[str] = []
    while True:
        members = choose_members([r for r in ranked if r[0] not in left_out])
        if len(members) < 2:
            reason = f"{len(members)} level-1 candidate(s) with validation predictions"
            if left_out:
                reason += f" whose compiles fit in {left:.1f}s (left out: {', '.join(left_out)})"
            raise Skipped(f"{reason}; a stack needs two")
        compiles = compile_cost.pending([compile_cost.member_source(d) for _, d in members])
        loading = packaging_seconds(len(members))
        needed = loading + sum(c.seconds for c in compiles)
        if left >= needed + 0.5:
            return members, needed, left_out
        if not compiles or left < loading + 0.5:
            raise Skipped(f"{left:.1f}s left before the deadline, about {needed:.1f}s needed")
        costliest = max(compiles, key=lambda c: c.seconds)
        name = members[costliest.member][0]
        log.warning("leaving %s out of the stack: compiling its %s model (%.0f MB, about "
                    "%.1fs) does not fit in the %.1fs left, and it would answer on the Python "
                    "path", name, costliest.family, costliest.bytes / 1e6, costliest.seconds,
                    left)
        left_out.append(name)


class Stacking:
    """The job runner's part (a mixin of JobRunner: its store, request and job name)."""

    def _stack(self, prepared: Prepared, split: Split, job_dir: Path, progress: Progress,
               deadline: float) -> bool:
        """Add the stack as a candidate; True when it became the job's best."""
        rows = {c.name: c for c in self.store.list_candidates(self.name)}
        ranked = [(n, d, rows[n].family, rows[n].latency_ms_p50)
                  for n, d in self._ranked(job_dir)]
        number = 1 + max((c.number for c in rows.values()), default=0)
        name = f"stack-{number:03d}"
        best_before = progress.best_value
        try:
            result = build(prepared, split, ranked, job_dir / "candidates" / name / "model",
                           deadline, self.request.seed)
        except Skipped as exc:
            log.info("no stack: %s", exc)
            self._note_stacking(status="skipped", reason=str(exc))
            shutil.rmtree(job_dir / "candidates" / name, ignore_errors=True)
            return False
        except Exception as exc:  # the level-1 candidates stand; a stack is a bonus
            log.exception("building the stack failed; the job goes on without it")
            self._note_stacking(status="failed", reason=f"{type(exc).__name__}: {exc}")
            shutil.rmtree(job_dir / "candidates" / name, ignore_errors=True)
            return False
        self.store.add_candidate(job=self.name, name=name, number=number, algorithm="Stacking",
                                 family="stack", params=result.params, source="stacking",
                                 status=st.CANDIDATE_IN_PROGRESS)
        record_built(self.store, self.name, name, result)
        wins = prepared.metric.is_better(result.objective, best_before) and \
            selection.within(result.latency_ms_p50, self.request.max_latency_ms)
        log.info("%s: %s %.5f over %d members (best level-1 %s)", name, prepared.metric.name,
                 result.objective, len(result.members), best_before)
        self._note_stacking(status="built", candidate=name, objective=result.objective,
                            best_level1=best_before, members=result.members,
                            pruned=result.params.get("pruned", []),
                            seconds=round(result.seconds, 3))
        if wins:
            progress.best_value, progress.best_candidate = result.objective, name
            self.store.update_job(self.name, best_candidate=name)
        return wins

    def _full_stacks(self, prepared: Prepared, split: Split, job_dir: Path,
                     deadline: float) -> None:
        """Each stack some of whose members were collapsed into `-full` models (refits.py)
        gets its twin over them, `stack-NNN-full` (`build_full`), when its packaging fits
        before `deadline`: a member not collapsed (selection.KEEP_BAGGED, or its refit did
        not fit in the time) stays the bag it is. A failure is logged and the stack stays
        as it is."""
        rows = {c.name: c for c in self.store.list_candidates(self.name)}
        suffix = selection.FULL_SUFFIX
        completed = {n for n, r in rows.items() if r.status == st.CANDIDATE_COMPLETED}
        for row in [r for r in rows.values() if r.family == "stack"
                    and r.name in completed and not r.name.endswith(suffix)]:
            fulls = twin_members((row.params or {}).get("members", []), completed)
            name = f"{row.name}{suffix}"
            if fulls is None or name in rows:
                continue
            sources = {f: compile_cost.member_source(job_dir / "candidates" / f) for f in fulls}
            if time.time() + packaging_seconds(len(fulls)) + \
                    compile_cost.seconds(list(sources.values())) > deadline:
                continue  # its compiles counted: a member compiled already is linked
            # read again: an earlier twin of this loop took the next number
            number = 1 + max(c.number for c in self.store.list_candidates(self.name))
            try:
                result = build_full(job_dir / "candidates" / row.name, sources,
                                    job_dir / "candidates" / name / "model", prepared, split,
                                    deadline)
            except Exception:  # the stack of bags stands
                log.exception("building %s failed", name)
                shutil.rmtree(job_dir / "candidates" / name, ignore_errors=True)
                continue
            self.store.add_candidate(job=self.name, name=name, number=number,
                                     algorithm="Stacking", family="stack",
                                     params=dict(row.params, members=fulls),
                                     source=selection.REFIT_FULL,
                                     status=st.CANDIDATE_IN_PROGRESS,
                                     trained_on=selection.REFIT_FULL)
            record_built(self.store, self.name, name, result)

    def _note_stacking(self, **note: Any) -> None:
        """What the stacking layer did, in the job's stats (describe shows it)."""
        stats = dict(self.store.get_job(self.name).stats or {})
        self.store.update_job(self.name, stats=dict(stats, stacking=note))
