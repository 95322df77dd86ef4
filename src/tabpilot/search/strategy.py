"""Search strategies propose candidates and learn from results; they never train.

    strategy = PortfolioThenTPE(families, metric, problem_type, n_rows)
    proposal = strategy.ask()            # None when it has nothing more to propose
    ...                                  # someone runs the trial
    strategy.tell(proposal.number, value)  # value None: the trial failed

A resumed job starts a fresh strategy told its finished trials (`history`): TPE learns
from them as if it had proposed them, and the portfolio skips the configurations tried.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import optuna

from tabpilot.metrics import Metric
from tabpilot.models import FAMILIES
from tabpilot.models.base import LOSS
from tabpilot.models.portfolio import portfolio
from tabpilot.search.halving import Promotions, RowBudget
from tabpilot.tasks import ProblemType

log = logging.getLogger("tabpilot.search")
optuna.logging.set_verbosity(optuna.logging.WARNING)

# Families in the order their first configuration is tried: strong and cheap first.
DEFAULT_ORDER = ["lightgbm", "xgboost", "catboost", "extra_trees", "linear", "random_forest",
                 "mlp"]
MAX_FAILURES_BEFORE_BAN = 3
LARGE_ROWS = 10_000
SLOW_DELAY = 3


@dataclass
class Proposal:
    number: int
    family: str
    params: dict[str, Any]
    source: str  # "portfolio" | "tpe" | "promoted"
    train_rows: int | None = None  # train on a subsample of this many rows (None: all)


@dataclass
class Finished:
    """A trial of an earlier run of the job: its family, parameters and objective (None:
    it failed)."""

    family: str
    params: dict[str, Any]
    value: float | None


class SearchStrategy(ABC):
    @abstractmethod
    def ask(self) -> Proposal | None: ...

    @abstractmethod
    def tell(self, number: int, value: float | None) -> None: ...


class PortfolioThenTPE(SearchStrategy):
    """Each family's portfolio, interleaved by rank, then Optuna TPE over algorithm and params.

    A family with a choice of losses for the task (ModelFamily.losses: LightGBM's and
    XGBoost's Tweedie on a target that is never negative) searches the loss as one more
    parameter; its portfolio runs with the default loss, and its first configuration once
    more with each other loss, right after every family's first.
    """

    def __init__(self, families: list[str] | None, metric: Metric, problem_type: ProblemType,
                 n_rows: int, seed: int = 0, history: list[Finished] | None = None,
                 first_number: int = 0, nonnegative_target: bool = False) -> None:
        chosen = families or DEFAULT_ORDER
        # the tabular families in their default order, then others (text's) as given
        self.families = [f for f in DEFAULT_ORDER if f in chosen] + \
            [f for f in chosen if f not in DEFAULT_ORDER]
        self.n_rows = n_rows
        # the families with a choice of loss (two or more), and theirs
        self.losses = {f: choice for f in self.families
                       if len(choice := FAMILIES[f].losses(problem_type, nonnegative_target)) > 1}
        direction = "maximize" if metric.greater_is_better else "minimize"
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=0, multivariate=False,
                                             constant_liar=True)
        self.study = optuna.create_study(direction=direction, sampler=sampler)
        self._outcomes: dict[str, list[bool]] = {f: [] for f in self.families}
        tried = self._replay(history or [])
        # the portfolio's trials are numbered after the replayed ones
        self._first_portfolio = len(self.study.trials)
        configs = self._portfolio(problem_type)
        keep = [i for i, config in enumerate(configs) if not _among(config, tried)]
        self._leads = [self._leads[i] for i in keep]
        self._n_portfolio = len(keep)
        for i in keep:
            self.study.enqueue_trial(configs[i])
        self._trials: dict[int, optuna.Trial] = {}
        self._family_of: dict[int, str] = {}
        # large tables: portfolio configurations screened on a subsample, the best promoted
        self.rows = RowBudget(n_rows)
        self.promotions = Promotions(metric.greater_is_better)
        self._screening: dict[int, Proposal] = {}
        self._next = first_number  # proposal numbers: optuna's trial numbers plus promotions

    @property
    def n_portfolio(self) -> int:
        """How many proposals come from the portfolio before TPE takes over."""
        return self._n_portfolio

    def _replay(self, history: list[Finished]) -> list[dict[str, Any]]:
        """Tell the study an earlier run's trials, as if it had proposed them; returns
        their configurations (to leave out of the portfolio). A trial whose parameters no
        longer fit the search space is left out (and logged)."""
        tried = []
        for done in history:
            if done.family not in self.families:
                continue
            losses = self.losses.get(done.family, [])
            params = dict({LOSS: losses[0]} if losses else {}, **done.params)
            config = {"algorithm": done.family,
                      **{f"{done.family}.{k}": v for k, v in params.items()}}
            try:
                fixed = optuna.trial.FixedTrial(config)
                FAMILIES[done.family].params(fixed, self.n_rows, losses)
                ok = done.value is not None and done.value == done.value
                self.study.add_trial(optuna.trial.create_trial(
                    params={"algorithm": done.family, **fixed.params},
                    distributions={"algorithm": optuna.distributions.CategoricalDistribution(
                        self.families), **fixed.distributions},
                    value=done.value if ok else None,
                    state=optuna.trial.TrialState.COMPLETE if ok
                    else optuna.trial.TrialState.FAIL))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("a %s trial of the earlier run is not replayed: %s", done.family, exc)
                continue
            self._outcomes[done.family].append(ok)
            tried.append(_plain(config))
        return tried

    def _banned(self, family: str) -> bool:
        """A family that failed every one of its first trials is not proposed again."""
        outcomes = self._outcomes[family]
        return len(outcomes) >= MAX_FAILURES_BEFORE_BAN and not any(outcomes)

    def _portfolio(self, problem_type: ProblemType) -> list[dict[str, Any]]:
        """Rank-interleaved: every family's first config, then every family's second...

        On large tables the slow families wait until the boosting portfolio has run.
        """
        entries = []
        for order, family in enumerate(self.families):
            delay = SLOW_DELAY if FAMILIES[family].slow and self.n_rows >= LARGE_ROWS else 0
            for rank, params in enumerate(self._with_losses(family, problem_type)):
                config = {f"{family}.{k}": v for k, v in params.items()}
                entries.append((rank + delay, order, {"algorithm": family, **config}))
        ordered = sorted(entries, key=lambda e: (e[0], e[1]))
        # on large tables each fast family's first configuration trains on every row at once
        self._leads = [rank == 0 and not FAMILIES[c["algorithm"]].slow for rank, _, c in ordered]
        return [config for _, _, config in ordered]

    def _with_losses(self, family: str, problem_type: ProblemType) -> list[dict[str, Any]]:
        """The family's portfolio with its default loss, and its first configuration with
        each other loss second (one loss or none: the portfolio as it is)."""
        configs = portfolio(FAMILIES[family], problem_type)
        losses = self.losses.get(family)
        if not losses:
            return configs
        first, *rest = [dict(c, **{LOSS: losses[0]}) for c in configs]
        return [first, *(dict(first, **{LOSS: loss}) for loss in losses[1:]), *rest]

    def ask(self) -> Proposal:
        promoted = self.promotions.next() if self.rows.large else None
        if promoted is not None:
            return self._proposal(promoted.family, promoted.params, "promoted",
                                  self.rows.full(promoted.family))
        trial = self.study.ask()
        family = trial.suggest_categorical("algorithm", self.families)
        allowed = [f for f in self.families if not self._banned(f)]
        if family not in allowed and allowed:
            # discard the proposal and let TPE choose the rest for an allowed family
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self.study.enqueue_trial({"algorithm": allowed[trial.number % len(allowed)]})
            trial = self.study.ask()
            family = trial.suggest_categorical("algorithm", self.families)
        params = FAMILIES[family].params(trial, self.n_rows, self.losses.get(family, ()))
        index = trial.number - self._first_portfolio  # in the portfolio, if in range
        source = "portfolio" if 0 <= index < self._n_portfolio else "tpe"
        lead = source == "portfolio" and self._leads[index]
        rows = self.rows.screen(family) if source == "portfolio" and not lead \
            else self.rows.full(family)
        self._trials[self._next] = trial
        proposal = self._proposal(family, params, source, rows)
        if source == "portfolio" and not lead and self.rows.large:
            self._screening[proposal.number] = proposal
        return proposal

    def _proposal(self, family: str, params: dict[str, Any], source: str,
                  rows: int | None) -> Proposal:
        proposal = Proposal(self._next, family, params, source, rows)
        self._family_of[proposal.number] = family
        self._next += 1
        return proposal

    def tell(self, number: int, value: float | None) -> None:
        screened = self._screening.pop(number, None)
        if screened is not None:
            self.promotions.add(screened.family, screened.params, value)
        ok = value is not None and value == value
        family = self._family_of.pop(number, None)
        if family is not None:
            self._outcomes[family].append(ok)
        trial = self._trials.pop(number, None)
        if trial is None:  # a promotion: the study saw its configuration when screened
            return
        if not ok:  # failed or NaN
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, value)


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    """Numbers as floats: a value read back from the store compares equal to the original."""
    return {k: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
            for k, v in config.items()}


def _among(config: dict[str, Any], tried: list[dict[str, Any]]) -> bool:
    """Whether a portfolio configuration was tried: a trial had all its values (the
    search fills in the parameters that a configuration leaves out)."""
    plain = _plain(config)
    return any(all(k in t and t[k] == v for k, v in plain.items()) for t in tried)
