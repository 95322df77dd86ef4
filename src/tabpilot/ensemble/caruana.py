"""Greedy ensemble selection with replacement (Caruana et al., ICML 2004).

Start from the best single model; at each step add (again, possibly) the model whose
inclusion most improves the validation score of the averaged predictions; keep the
weights of the best step. Weights are counts of inclusions, normalised to sum to 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ScoreFn = Callable[[np.ndarray], float]  # higher is better


def greedy_weights(predictions: list[np.ndarray], score: ScoreFn, steps: int = 25
                   ) -> np.ndarray:
    """Weights over `predictions` (validation predictions of each model, same shape)."""
    if not predictions:
        raise ValueError("greedy_weights needs at least one model's predictions")
    singles = [score(p) for p in predictions]
    first = int(np.nanargmax(singles))
    counts = np.zeros(len(predictions))
    counts[first] = 1
    total = predictions[first].astype(np.float64).copy()
    best_score, best_counts = singles[first], counts.copy()
    for step in range(2, steps + 1):
        trial_scores = [score((total + p) / step) for p in predictions]
        pick = int(np.nanargmax(trial_scores))
        counts[pick] += 1
        total += predictions[pick]
        if trial_scores[pick] > best_score + 1e-12:
            best_score, best_counts = trial_scores[pick], counts.copy()
    return best_counts / best_counts.sum()
