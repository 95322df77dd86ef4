"""Stacking: a level-2 model trained on the level-1 candidates' out-of-fold predictions.

Its features are the members' validation predictions: the logit of P(positive) (binary),
centred log-probabilities (multiclass) or the values (regression), standardised. The
model is a regularised linear one, logistic regression or ridge: with a handful of
strongly correlated members a flexible level-2 model mostly learns the folds' noise, and
a linear one still corrects what averaging cannot (a member's over- or under-confidence,
a class one member gets right and the others do not).

Its own validation predictions are out-of-fold as well: those of fold k come from a
stacker fitted on the other folds' rows only (the job's folds under k-fold cross-
validation; k folds of the holdout rows otherwise). So its score compares with the
members' and with the greedy ensemble's, and no hyperparameter is chosen on it.

Then members are pruned, as a greedy ensemble's are (tabpilot.ensemble.caruana): one whose
removal does not lower the stacker's out-of-fold score is dropped, the slowest first, until
every member left earns its place (two at least). A stack answers a row by asking every
member, and with a handful of strongly correlated members the linear model often scores
better without some of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, softmax
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from tabpilot.data.split import Split
from tabpilot.ensemble.caruana import drop_while_no_worse
from tabpilot.tasks import ProblemType

# probabilities are clipped to [CLIP, 1 - CLIP] before taking logs: a forest's 0 or 1
# would otherwise become an outlier of +-14 that the standardisation then spreads over all
CLIP = 1e-3
HOLDOUT_FOLDS = 5  # folds over a holdout's rows for the stacker's own validation predictions
# Fixed, moderate regularisation on standardised features: choosing it on the folds
# would make the stacker's score optimistic (and cost a fit per value and fold). C=0.1
# scored better out of fold than C=1 on credit_g and wine_quality (bench, 60 s jobs).
STACKER_PARAMS: dict[ProblemType, dict[str, Any]] = {
    ProblemType.BINARY: {"C": 0.1, "max_iter": 1000},
    ProblemType.MULTICLASS: {"C": 0.1, "max_iter": 1000},
    ProblemType.REGRESSION: {"alpha": 1.0},
}


def stack_features(predictions: list[np.ndarray], problem_type: ProblemType) -> np.ndarray:
    """The stacker's input: one column per member (binary, regression) or per member and
    class (multiclass), from each member's probabilities or values."""
    columns = []
    for pred in predictions:
        p = np.asarray(pred, dtype=np.float64)
        if problem_type is ProblemType.REGRESSION:
            columns.append(p.reshape(-1, 1))
        elif p.shape[1] == 2:
            q = np.clip(p[:, 1], CLIP, 1 - CLIP)
            columns.append(np.log(q / (1 - q)).reshape(-1, 1))
        else:  # log-ratios to the row's mean: what softmax sees, without a per-row offset
            logp = np.log(np.clip(p, CLIP, 1.0))
            columns.append(logp - logp.mean(axis=1, keepdims=True))
    return np.hstack(columns)


def make_stacker(problem_type: ProblemType) -> Pipeline:
    params = STACKER_PARAMS[problem_type]
    model = Ridge(**params) if problem_type is ProblemType.REGRESSION else \
        LogisticRegression(**params)
    return make_pipeline(StandardScaler(), model)


def stacker_predict(model: Pipeline, features: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities over every class of the job (a fold may lack a rare class), or values.

    Computed from the fitted scaler's and linear model's arrays, as their own predict
    computes them (standardise, one product, then the logistic function or softmax),
    without scikit-learn's input validation: a third of a millisecond per call, which
    was most of the stacker's share of a stacked ensemble's one-row answer."""
    scaler, linear = model[0], model[-1]
    scores = (features - scaler.mean_) / scaler.scale_ @ linear.coef_.T + linear.intercept_
    if not n_classes:
        return np.asarray(scores, dtype=np.float64).reshape(len(features))
    if scores.ndim == 1 or scores.shape[1] == 1:  # two classes: one score, the second's
        positive = expit(scores.reshape(len(features)))
        proba = np.column_stack([1 - positive, positive])
    else:
        proba = softmax(scores, axis=1)
    full = np.zeros((len(features), n_classes))
    full[:, np.asarray(model.classes_, dtype=int)] = proba
    return full


def stacking_folds(split: Split, y_valid: np.ndarray, classification: bool, seed: int
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds over positions in `split.validation_rows()` (the order of saved predictions).

    Under k-fold they are the job's own folds, so fold k's stacked predictions use no
    member prediction of fold k's rows; over a holdout, `HOLDOUT_FOLDS` folds of it.
    """
    n = len(y_valid)
    if split.is_cv:
        bounds = np.cumsum([0, *(len(va) for _, va in split.folds)])
        every = np.arange(n)
        return [(np.concatenate([every[:lo], every[hi:]]), every[lo:hi])
                for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    k = min(HOLDOUT_FOLDS, n)
    if classification and np.min(np.bincount(y_valid)) >= k:
        splitter: Any = StratifiedKFold(k, shuffle=True, random_state=seed)
    else:
        splitter = KFold(k, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in splitter.split(np.zeros(n), y_valid)]


@dataclass
class StackFit:
    oof: np.ndarray  # the stacker's out-of-fold predictions, in the rows' order
    model: Pipeline  # fitted on every row, for new data


def fit_stack(features: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
              problem_type: ProblemType, n_classes: int, deadline: float | None = None
              ) -> StackFit:
    """Out-of-fold predictions of the stacker, then the stacker fitted on every row.

    Raises TimeoutError, as soon as the slowest fit so far says the next would end after
    `deadline` (time.time()), so that what comes after keeps its time.
    """
    shape = (len(y), n_classes) if n_classes else (len(y),)
    oof = np.full(shape, np.nan)
    slowest = 0.0
    # one BLAS thread: these problems are small, and on a loaded machine BLAS threads
    # waiting for each other made one multiclass fit 100 times slower (26 s, not 0.2 s)
    with threadpool_limits(limits=1):
        for train, valid in [*folds, (np.arange(len(y)), None)]:
            if deadline is not None and time.time() + slowest > deadline:
                raise TimeoutError(f"the stacker's fits ran out of time ({slowest:.2f}s each)")
            started = time.time()
            model = make_stacker(problem_type).fit(features[train], y[train])
            slowest = max(slowest, time.time() - started)
            if valid is not None:
                oof[valid] = stacker_predict(model, features[valid], n_classes)
    return StackFit(oof, model)


# a stack's fit over some of its members (their indices) and its out-of-fold score, higher
# better; raises TimeoutError when the fits would end after the stack's deadline
FitScore = Callable[[list[int]], tuple[float, StackFit]]
MIN_MEMBERS = 2  # fewer, and a stack would be one member's recalibration


def prune(costs: Sequence[float], fit_score: FitScore, best: float, fitted: StackFit
          ) -> tuple[list[int], StackFit, float]:
    """The members (indices into `costs`, each member's one-row latency) left when those
    whose removal does not lower the score `best` of the stack over all of them (`fitted`)
    are dropped: one at a time, the costliest first, until none can go or MIN_MEMBERS are
    left. Returns them, their stack's fit and its score. When time runs out (TimeoutError)
    the pruning stops where it is."""
    return drop_while_no_worse(list(range(len(costs))),
                               lambda kept: sorted(kept, key=lambda i: (-costs[i], i)),
                               fit_score, best, fitted, MIN_MEMBERS)
