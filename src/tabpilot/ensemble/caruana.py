"""Greedy ensemble selection with replacement (Caruana et al., ICML 2004).

Start from the best single model; at each step add (again, possibly) the model whose
inclusion most improves the validation score of the averaged predictions; keep the
weights of the best step. Weights are counts of inclusions, normalised to sum to 1.

Then members are pruned: one whose removal does not lower the score (a model chosen once
early, whose share later steps diluted) is dropped, the least weighted first (the costliest
among equals), until every member left earns its place. An ensemble answers a row by asking
each member, so a member that adds nothing to the score adds only to the latency.

With `costs` and a `budget` the selection is bounded: a model joins only while the costs
of the distinct models chosen stay within the budget (one-row latencies, for an ensemble
that must answer fast); models already chosen may be added again at no cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

ScoreFn = Callable[[np.ndarray], float]  # higher is better
T = TypeVar("T")


def greedy_weights(predictions: list[np.ndarray], score: ScoreFn, steps: int = 25,
                   costs: Sequence[float] | None = None, budget: float | None = None
                   ) -> np.ndarray:
    """Weights over `predictions` (validation predictions of each model, same shape); all
    zero when a budget leaves no model within it."""
    if not predictions:
        raise ValueError("greedy_weights needs at least one model's predictions")
    cost = np.zeros(len(predictions)) if costs is None or budget is None \
        else np.asarray(costs, dtype=np.float64)
    limit = np.inf if budget is None else float(budget)
    counts = np.zeros(len(predictions))
    affordable = [i for i in range(len(predictions)) if cost[i] <= limit]
    if not affordable:
        return counts
    singles = [score(predictions[i]) for i in affordable]
    k = int(np.nanargmax(singles))
    first = affordable[k]
    counts[first] = 1
    total = predictions[first].astype(np.float64).copy()
    best_score, best_counts = singles[k], counts.copy()
    for step in range(2, steps + 1):
        spent = cost[counts > 0].sum()
        allowed = [i for i in range(len(predictions))
                   if counts[i] > 0 or spent + cost[i] <= limit]
        trial_scores = [score((total + predictions[i]) / step) for i in allowed]
        k = int(np.nanargmax(trial_scores))
        pick = allowed[k]
        counts[pick] += 1
        total += predictions[pick]
        if trial_scores[k] > best_score + 1e-12:
            best_score, best_counts = trial_scores[k], counts.copy()
    best_counts = prune(predictions, score, best_counts, best_score, cost)
    return best_counts / best_counts.sum()


def prune(predictions: list[np.ndarray], score: ScoreFn, counts: np.ndarray,
          best: float, cost: np.ndarray) -> np.ndarray:
    """`counts` without the members whose removal does not lower the score `best`: one at
    a time, the fewest inclusions first (then the costliest), until none can go."""

    def blend_score(kept: list[int]) -> tuple[float, np.ndarray]:
        trial = np.zeros_like(counts)
        trial[kept] = counts[kept]
        return score(sum(predictions[j] * trial[j] for j in kept) / trial.sum()), trial

    kept = [int(i) for i in np.flatnonzero(counts)]
    _, pruned, _ = drop_while_no_worse(
        kept, lambda left: sorted(left, key=lambda i: (counts[i], -cost[i], i)), blend_score,
        best, counts.copy())
    return pruned


def drop_while_no_worse(kept: list[int], order: Callable[[list[int]], list[int]],
                        evaluate: Callable[[list[int]], tuple[float, T]], best: float,
                        state: T, minimum: int = 1) -> tuple[list[int], T, float]:
    """Backward elimination of the members `kept` (indices, in increasing order), whose
    score is `best` (higher is better) and whatever `evaluate` makes of them `state`: one
    at a time, the first in `order(kept)` whose removal scores no worse (`evaluate`: the
    members left -> their score and state) is dropped, until none can go or `minimum` are
    left. Returns the members left, their state and score. A TimeoutError from `evaluate`
    stops it where it is."""
    while len(kept) > minimum:
        for i in order(kept):
            trial = [j for j in kept if j != i]
            try:
                value, trial_state = evaluate(trial)
            except TimeoutError:
                return kept, state, best
            if value >= best - 1e-12:
                kept, state, best = trial, trial_state, max(best, value)
                break
        else:
            break
    return kept, state, best
