"""The model-family adapter: what an algorithm must provide to take part in a search.

A family declares its preprocessing style, its search space (Optuna define-by-run, so a
search strategy can propose parameters without training anything), an ordered portfolio
of strong configurations, and how to fit within a deadline. The trial runner owns the
data, the split and the scoring; a family only turns (params, arrays) into an estimator.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tabpilot.tasks import ProblemType

if TYPE_CHECKING:
    import optuna


@dataclass
class FitData:
    X: Any  # numpy array or scipy CSR matrix, output of the family's encoder
    y: np.ndarray
    problem_type: ProblemType
    n_classes: int
    categorical_indices: list[int]
    weights: np.ndarray | None = None
    X_valid: Any = None
    y_valid: np.ndarray | None = None
    deadline: float = float("inf")  # time.time() by which fitting must stop
    n_threads: int = 1
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # filled by fit (e.g. best iteration)
    # True: fit may overwrite X in place (the caller never reads these rows again), so a
    # model that centres or scales its input need not copy it first
    X_writable: bool = False
    # record the per-round training and validation loss in info["curves"] (see
    # record_curves); False only to measure what recording costs
    curves: bool = True

    def out_of_time(self) -> bool:
        """True once the deadline has passed; the fit then records that it was cut short."""
        if time.time() >= self.deadline:
            self.info["stopped_by_deadline"] = True
            return True
        return False


# the searched parameter that names a family's training loss (ModelFamily.losses)
LOSS = "objective"


class ModelFamily(ABC):
    name: str
    label: str  # human-readable algorithm name
    style: str  # preprocessing style: native | ordinal | onehot
    slow: bool = False  # much costlier than LightGBM per row: tried later on large tables
    # on large tables, train on at most this many rows: a family whose memory per row is
    # several times the table's (a dense one-hot matrix, CatBoost's CTR tables)
    max_rows: int | None = None
    # the training losses of a regression target that is never negative, the default first
    # (counts, prices, amounts: often fitted better as a mean on a log link, Tweedie's)
    nonnegative_losses: tuple[str, ...] = ()

    def params(self, trial: optuna.Trial | optuna.trial.FrozenTrial, n_rows: int,
               losses: Sequence[str] = ()) -> dict[str, Any]:
        """Suggest this family's hyperparameters, with names prefixed by the family; with
        two or more `losses` (the family's `losses` for the task), the loss is one more."""
        prefixed = _Prefixed(trial, self.name)
        params = self._suggest(prefixed, n_rows)
        if len(losses) > 1:
            params[LOSS] = prefixed.suggest_categorical(LOSS, list(losses))
        return params

    def losses(self, problem_type: ProblemType, nonnegative_target: bool) -> list[str]:
        """The training losses the search chooses among for this task, the default first
        (the parameter `objective`); none or one: no choice, the family's own loss."""
        if problem_type is ProblemType.REGRESSION and nonnegative_target:
            return list(self.nonnegative_losses)
        return []

    def log_link(self, estimator: Any) -> bool:
        """Whether a fitted regression model's raw output (its margin, what TreeSHAP splits
        among the features) is the log of its prediction: a Tweedie loss."""
        return False

    @abstractmethod
    def _suggest(self, trial: Any, n_rows: int) -> dict[str, Any]:
        """Return {param: value}; trial.suggest_* for searched ones (names get the prefix)."""

    @abstractmethod
    def portfolio(self, problem_type: ProblemType) -> list[dict[str, Any]]:
        """Ordered strong configurations, as values of this family's searched parameters."""

    @abstractmethod
    def fit(self, params: dict[str, Any], data: FitData) -> Any:
        """Fit and return an estimator; stop by data.deadline, keeping what was learned."""

    def refit_params(self, params: dict[str, Any], infos: list[dict[str, Any]]
                     ) -> dict[str, Any]:
        """Parameters for a refit on all rows, given what each fold's fit learned."""
        return params

    def predict(self, estimator: Any, X: Any, problem_type: ProblemType) -> np.ndarray:
        """Class probabilities (rows, classes) or regression values (rows,)."""
        classification = problem_type.is_classification
        out = self.direct_predict(estimator, X, problem_type)
        if out is None:
            out = np.asarray(estimator.predict_proba(X) if classification
                             else estimator.predict(X), dtype=np.float64)
        return all_classes(estimator, out) if classification else out

    def direct_predict(self, estimator: Any, X: Any, problem_type: ProblemType
                       ) -> np.ndarray | None:
        """The estimator's own predictions computed without its per-call input checks,
        where the family can (models/sklearn_fast.py); None: its predict answers."""
        return None

    def bag(self, estimators: list[Any], problem_type: ProblemType
            ) -> Callable[[Any], np.ndarray | None] | None:
        """The mean of a bag's predictions in one pass, where the family can stack its
        estimators into one model (models/sklearn_fast.MLPBag): a callable answering
        like `predict`, or None for an input it does not take. None: each estimator
        answers and the predictor averages them."""
        return None


BATCH_THREADS_FROM = 5000  # rows; below, one thread answers fastest (no pool wake-up)


def predict_threads(n_rows: int) -> int:
    """Threads for a prediction: one for small requests, every core for large batches."""
    return 1 if n_rows < BATCH_THREADS_FROM else 0


def all_classes(estimator: Any, proba: np.ndarray) -> np.ndarray:
    """Widen probabilities to every class when a training fold lacked some of them.

    Fits record the full class count as `n_classes_total_` on scikit-learn estimators.
    """
    k = getattr(estimator, "n_classes_total_", 0)
    if proba.shape[1] == k or not k or not hasattr(estimator, "classes_"):
        return proba
    full = np.zeros((proba.shape[0], k))
    full[:, np.asarray(estimator.classes_, dtype=int)] = proba
    return full


class _Prefixed:
    """Wraps an Optuna trial so that every parameter name carries the family prefix."""

    def __init__(self, trial: Any, prefix: str) -> None:
        self._trial = trial
        self._prefix = prefix

    def __getattr__(self, attr: str):
        method = getattr(self._trial, attr)
        if not attr.startswith("suggest_"):
            return method

        def suggest(name: str, *args: Any, **kwargs: Any) -> Any:
            return method(f"{self._prefix}.{name}", *args, **kwargs)

        return suggest


# the training curve is measured on at most this many training rows (a fixed seeded
# sample): scoring every training row each round would cost more than the ~5 % of fit
# time curves may take on large tables (bench/diagnostics_overhead.py)
CURVE_TRAIN_ROWS = 2000


def curve_train_rows(data: FitData) -> np.ndarray | None:
    """The training rows a training curve is measured on: None for every row (a table no
    larger than CURVE_TRAIN_ROWS), else a sorted seeded sample, the same for every round."""
    n = data.X.shape[0]
    if n <= CURVE_TRAIN_ROWS:
        return None
    rng = np.random.default_rng(data.seed)
    return np.sort(rng.choice(n, CURVE_TRAIN_ROWS, replace=False))


def record_curves(data: FitData, metric: str, train: Any, validation: Any,
                  best_iteration: int | None) -> None:
    """Keep a fit's loss per boosting round / epoch in info["curves"] (curves.json's shape,
    diagnostics/curves.py): every family's metric is a loss, so lower is better. The trial
    moves them out of info before info is stored (they can be thousands of numbers)."""
    if not data.curves:
        return
    data.info["curves"] = {
        "metric": metric, "higher_is_better": False, "best_iteration": best_iteration,
        "train": [float(v) for v in train], "validation": [float(v) for v in validation]}


def mean_best_iteration(infos: list[dict[str, Any]], default: int) -> int:
    its = [i["best_iteration"] for i in infos if i.get("best_iteration")]
    return max(10, int(np.mean(its) * 1.1)) if its else default
