"""Latency-aware selection: which candidate a job hands out, and the accuracy-latency front.

Every candidate's single-row latency (p50 of one-row predictions on the packaged model,
`artifacts.latency.measure`) is in the store. The candidate a job hands out (`select`) is
the most accurate whose latency is within the request's `max_latency_ms`; without a bound,
by default, the fastest candidate at least FAST_SPEEDUP times faster than the most accurate
whose shortfall is within the noise of the comparison: one standard error of the
difference of their validation scores (a paired bootstrap, jobs/spread.py, kept in the
board's attrs as `shortfall_se`), and never more than FAST_TOLERANCE (relative); often the
job's distilled model. When the most accurate misses LATENCY_GOAL_MS and that candidate
does not meet it either (or there is none), the most accurate candidate that meets the
goal within FAST_TOLERANCE (`goal_choice`). Else the most accurate. With
`selection="accuracy"`, the most accurate. The functions here work on leaderboard rows
(best first), so the runner, the views and the CLI agree on one definition.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np
import pandas as pd

from tabpilot.config import JobRequest
from tabpilot.metrics import METRICS

# A "fast choice" may lose this share of the objective (relative to the chosen candidate's),
# and no more than one standard error of the difference where that is known (SHORTFALL_SE),
# for at least FAST_SPEEDUP times less single-row latency.
FAST_TOLERANCE = 0.005
FAST_SPEEDUP = 2.0
# The default model's one-row latency goal, in process. Serving one row over loopback adds
# 0.5-0.75 ms on a quiet machine and up to 1.9 ms when the host is busy (bench.default_model,
# 60 s: 16 default models of 0.12-1.8 ms in process; the same model's HTTP p50 moved by up
# to 1.4 ms between passes minutes apart), so a model slower than this misses the 2 ms an
# endpoint should answer in, and one at 1.25 ms meets it only on a quiet machine. When the
# most accurate candidate misses it, and no candidate within one standard error meets it,
# the most accurate candidate that meets it is handed out if it is within FAST_TOLERANCE
# (`goal_choice`)
LATENCY_GOAL_MS = 1.0
REFIT_FULL = "refit-full"  # `trained_on` of a bag collapsed into one model on every row
FULL_SUFFIX = "-full"  # its name: the bag's, with this (an ensemble of them: ensemble-NNN-full)
COMBINED = ("Ensemble", "Stacking")  # algorithms of candidates made of several candidates
# Bags never collapsed without a bound; the `-full` ensemble and stack hold them as they
# are. An MLP bag's networks differ by their random start as well as their rows, and their
# average is worth more than a fifth more rows (abalone, 300 s: an ensemble of refits with
# 68 % of its weight on MLPs scored 1.1 % worse on test than the bags it replaced, and as
# well on validation, where the average's worth cannot show)
KEEP_BAGGED = ("MLP",)
SHORTFALL_SE = "shortfall_se"  # board.attrs / job stats: jobs/spread.shortfall_errors
# an `ensemble-NNN-full`'s parameter naming the ensemble whose members' twins it holds at
# the same weights; the board's attrs list those parents (never handed out in its place)
REFIT_OF = "refit_of"
REFIT_PARENTS = "refit_parents"


def full_twin(name: str, completed: Collection[str]) -> str:
    """`name`'s `-full` twin (its bags refit on every row) when that is among the
    `completed` candidates; else `name` itself."""
    twin = f"{name}{FULL_SUFFIX}"
    return twin if twin in completed else name


def within(latency_ms: float | None, bound_ms: float | None) -> bool:
    """Whether a measured latency meets the bound; unmeasured never does, no bound always."""
    if bound_ms is None:
        return True
    return latency_ms is not None and math.isfinite(latency_ms) and latency_ms <= bound_ms


def pareto_front(objective: np.ndarray, latency: np.ndarray, greater_is_better: bool
                 ) -> np.ndarray:
    """True for the rows no other row dominates: at least as good on the objective and at
    least as fast, and strictly better on one of the two. Rows lacking either are off it."""
    gain = np.asarray(objective, dtype=float) * (1.0 if greater_is_better else -1.0)
    cost = np.asarray(latency, dtype=float)
    valid = np.isfinite(gain) & np.isfinite(cost)
    front = np.zeros(len(gain), dtype=bool)
    for i in np.flatnonzero(valid):
        dominated = valid & (gain >= gain[i]) & (cost <= cost[i]) & (
            (gain > gain[i]) | (cost < cost[i]))
        front[i] = not dominated.any()
    return front


def choose(board: pd.DataFrame, bound_ms: float | None) -> tuple[str | None, str | None]:
    """The candidate to hand out, and a note when no candidate met the bound.

    `board` is the leaderboard (best first). When nothing answers within the bound the
    fastest candidate is handed out rather than none, and the note says so.
    """
    if board.empty:
        return None, None
    for name, latency in zip(board["candidate"], board["latency_ms_p50"], strict=True):
        if within(_num(latency), bound_ms):
            return str(name), None
    latencies = pd.to_numeric(board["latency_ms_p50"], errors="coerce")
    if latencies.notna().any():
        fastest = board.loc[latencies.idxmin()]
        return str(fastest["candidate"]), (
            f"no candidate answers one row within {bound_ms:g} ms; the fastest, "
            f"{fastest['candidate']} ({float(fastest['latency_ms_p50']):.3g} ms), was chosen")
    return str(board.iloc[0]["candidate"]), (
        f"no candidate's latency was measured; {board.iloc[0]['candidate']} was chosen "
        f"without checking the {bound_ms:g} ms bound")


def select(board: pd.DataFrame, bound_ms: float | None, policy: str,
           greater_is_better: bool) -> tuple[str | None, str | None]:
    """The candidate a job hands out, and a note that explains a choice other than the
    leaderboard's first.

    - With a latency bound: the most accurate within it (`choose`).
    - `accuracy`: the most accurate.
    - `balanced` (the default): the fastest candidate at least FAST_SPEEDUP times faster
      than the most accurate whose objective is within FAST_TOLERANCE (relative) of its
      objective (`fast_choice`); when the most accurate misses LATENCY_GOAL_MS and so
      does that candidate (or there is none), the most accurate meeting the goal within
      FAST_TOLERANCE (`goal_choice`); the most accurate when there is neither.
    """
    best, note = choose(board, bound_ms)
    if bound_ms is not None or policy != "balanced" or best is None:
        return best, note
    rows = board.set_index("candidate")
    metric = board.attrs.get("objective_metric") or "objective"
    fast = fast_choice(board, best, greater_is_better)
    goal = goal_choice(board, best, greater_is_better) if fast is None or \
        not within(_num(rows.at[fast, "latency_ms_p50"]), LATENCY_GOAL_MS) else None
    if goal is not None:
        return goal, (
            f"{goal} ({metric} {float(rows.at[goal, 'objective']):.5g}, "
            f"{float(rows.at[goal, 'latency_ms_p50']):.3g} ms per row) was chosen over the "
            f"most accurate, {best} ({float(rows.at[best, 'objective']):.5g}, "
            f"{float(rows.at[best, 'latency_ms_p50']):.3g} ms), which misses the "
            f"{LATENCY_GOAL_MS:g} ms goal for one row: it is the most accurate candidate "
            f"that meets it, within {FAST_TOLERANCE:.1%} of the {metric}; --selection "
            f"accuracy hands out {best}")
    if fast is None:
        return best, None
    speedup = float(rows.at[best, "latency_ms_p50"]) / float(rows.at[fast, "latency_ms_p50"])
    error = _errors(board, best).get(fast)
    within_what = f"within {FAST_TOLERANCE:.1%} of its {metric}" if error is None else (
        f"within one standard error ({error:.2g}) of its {metric}, at most {FAST_TOLERANCE:.1%}")
    return fast, (
        f"{fast} ({metric} {float(rows.at[fast, 'objective']):.5g}, "
        f"{float(rows.at[fast, 'latency_ms_p50']):.3g} ms per row) was chosen over the most "
        f"accurate, {best} ({float(rows.at[best, 'objective']):.5g}, "
        f"{float(rows.at[best, 'latency_ms_p50']):.3g} ms): {within_what} and "
        f"{speedup:.1f}x faster; --selection accuracy hands out {best}")


def for_request(board: pd.DataFrame, request: JobRequest) -> tuple[str | None, str | None]:
    """`select` as the job's request asks (its bound and policy)."""
    return select(board, request.max_latency_ms, request.selection, greater_is_better(board))


def refit_note(name: str, bounded: bool, bagged: bool = True) -> str:
    """What a handed-out candidate refit on every row (REFIT_FULL) says of its scores: it
    was refit from k-fold bags (`bagged`), or from models trained without the holdout; and,
    for bags without a latency bound (`bounded`), how to keep them."""
    if not bagged:
        return (f"{name} holds models refit on every training row, the holdout's too "
                f"(TrainedOn: {REFIT_FULL}): its validation scores are those of the models "
                "trained without the holdout, carried over")
    note = (f"{name} holds bags of fold models refit as one model on every row (TrainedOn: "
            f"{REFIT_FULL}): its validation scores are the bags' out-of-fold scores, carried "
            "over (each estimates one model trained on fewer rows)")
    return note if bounded else f"{note}; --selection accuracy keeps the bags"


def joined(*notes: str | None) -> str | None:
    """Notes on the handed-out candidate as one line: clauses apart by semicolons (each
    note is a sentence without its full stop); None when there is none."""
    return "; ".join(n for n in notes if n) or None


def greater_is_better(board: pd.DataFrame) -> bool:
    """Whether the board's objective grows with quality (an unknown metric: assumed so)."""
    metric = METRICS.get(board.attrs.get("objective_metric") or "")
    return metric is None or metric.greater_is_better


def fast_choice(board: pd.DataFrame, chosen: str | None, greater_is_better: bool,
                tolerance: float = FAST_TOLERANCE, speedup: float = FAST_SPEEDUP) -> str | None:
    """The fastest candidate at least `speedup` times faster than `chosen` whose objective
    is within `tolerance` (relative) of its objective, and within one standard error of
    the difference where the board knows it (`SHORTFALL_SE` against `chosen`); None when
    there is none.

    An ensemble or a k-fold bag answers one row several times slower than one model of it;
    this names the cheaper model that costs (almost) nothing in accuracy.
    """
    errors = _errors(board, chosen)
    found, found_ms = None, math.inf
    for name, lost, ms in _near(board, chosen, greater_is_better, tolerance, speedup):
        error = errors.get(name)
        if (error is None or lost <= error) and ms < found_ms:
            found, found_ms = name, ms
    return found


def goal_choice(board: pd.DataFrame, chosen: str | None, greater_is_better: bool,
                goal_ms: float = LATENCY_GOAL_MS, tolerance: float = FAST_TOLERANCE
                ) -> str | None:
    """When `chosen` answers one row slower than `goal_ms`: the most accurate candidate
    that answers within it and is within `tolerance` (relative) of `chosen`'s objective,
    however large the standard error of the difference; None otherwise.

    An ensemble of text models can answer in 2-3 ms a row while a stack or a single model
    within a fraction of a percent answers in under one (womens_clothing_reviews at 300 s:
    AUC 0.9851 in 2.7 ms, a stack 0.9830 in 0.67 ms).
    """
    rows = board.set_index("candidate")
    if chosen is None or chosen not in rows.index:
        return None
    best_ms = _num(rows.at[chosen, "latency_ms_p50"])
    if best_ms is None or best_ms <= goal_ms:
        return None
    near = _near(board, chosen, greater_is_better, tolerance, best_ms / goal_ms)
    return min(near, key=lambda found: found[1])[0] if near else None


def contenders(board: pd.DataFrame, chosen: str | None, greater_is_better: bool,
               tolerance: float = FAST_TOLERANCE, speedup: float = FAST_SPEEDUP) -> list[str]:
    """The candidates the relative rule alone would accept instead of `chosen`: the ones
    whose standard error of the difference is worth measuring (jobs/spread.py)."""
    return [name for name, _, _ in _near(board, chosen, greater_is_better, tolerance, speedup)]


def best_is_single(board: pd.DataFrame) -> bool:
    """Whether a leaderboard's most accurate candidate is a single model (not an ensemble
    or a stack of others); False for an empty board."""
    return not board.empty and board["algorithm"].iloc[0] not in COMBINED


def _near(board: pd.DataFrame, chosen: str | None, greater_is_better: bool, tolerance: float,
          speedup: float) -> list[tuple[str, float, float]]:
    """(name, shortfall, latency) of every candidate at least `speedup` times faster than
    `chosen` and within `tolerance` (relative) of its objective."""
    rows = board.set_index("candidate")
    if chosen is None or chosen not in rows.index:
        return []
    best_obj, best_ms = _num(rows.at[chosen, "objective"]), _num(rows.at[chosen, "latency_ms_p50"])
    if best_obj is None or best_ms is None:
        return []
    parents = set(board.attrs.get(REFIT_PARENTS) or ())
    out = []
    for name, obj, ms in zip(board["candidate"], board["objective"], board["latency_ms_p50"],
                             strict=True):
        obj, ms = _num(obj), _num(ms)
        # a model with a `-full` twin (an ensemble with one of its refits) is not handed
        # out: the twin has its scores and more rows (on a holdout, the two answer alike,
        # and the parent can time faster: bike_sharing_hourly at 60 s, an ensemble timed
        # 0.96 ms, its twin 1.91 ms, and the parent scored 2.4 % worse on the test rows)
        if obj is None or ms is None or name == chosen or name in parents or \
                f"{name}{FULL_SUFFIX}" in rows.index:
            continue
        lost = shortfall(best_obj, obj, greater_is_better)
        if tolerated(lost, best_obj, None, tolerance) and ms <= best_ms / speedup:
            out.append((str(name), lost, ms))
    return out


def shortfall(best_obj: float, obj: float, greater_is_better: bool) -> float:
    """How much worse objective `obj` is than `best_obj` (negative when better)."""
    return (best_obj - obj) if greater_is_better else (obj - best_obj)


def tolerated(lost: float, best_obj: float, error: float | None,
              tolerance: float = FAST_TOLERANCE) -> bool:
    """Whether the default selection gives up a `shortfall` of `lost` from `best_obj` for
    speed: at most `tolerance` of it (relative), and at most `error` (one standard error
    of the difference, jobs/spread.py) when that is known."""
    return lost <= tolerance * max(abs(best_obj), 1e-12) and (error is None or lost <= error)


def _errors(board: pd.DataFrame, chosen: str | None) -> dict[str, float]:
    """The standard errors of the board's shortfalls against `chosen`, if it has them."""
    spread = board.attrs.get(SHORTFALL_SE) or {}
    if not isinstance(spread, dict) or spread.get("against") != chosen:
        return {}
    return {str(k): float(v) for k, v in (spread.get("errors") or {}).items()}


def refit_full_target(board: pd.DataFrame, bound_ms: float, n_folds: int) -> str | None:
    """The best k-fold bag that misses the bound but whose one-model refit might meet it.

    Only candidates ranked above the best one within the bound are worth collapsing, and
    ensembles and stacks are not bags of one pipeline. One model of a bag of k answers
    about k times faster (a little less: the preprocessing is shared).
    """
    for name, algorithm, ms in zip(board["candidate"], board["algorithm"],
                                   board["latency_ms_p50"], strict=True):
        ms = _num(ms)
        if within(ms, bound_ms):
            return None  # this one is chosen already; nothing below it is better
        if algorithm in COMBINED or ms is None:
            continue
        if ms / n_folds <= bound_ms:
            return str(name)
    return None


def _num(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None
