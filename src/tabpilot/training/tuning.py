"""The search of a hyperparameter tuning job: SageMaker's ParameterRanges, strategies and
early stopping on Optuna's samplers and pruners, ask / tell, nothing else (the API's tuning
worker runs the training jobs; `training/progress.py` is a running job's side).

    Bayesian   Optuna's TPE sampler (a tree-structured Parzen estimator, where SageMaker uses
               a Gaussian process: the same role, a different model), seeded
    Random     Optuna's random sampler
    Grid       every combination of the categorical ranges (SageMaker allows only those),
               in a seeded order (Optuna's grid sampler)
    Hyperband  TPE proposals, each job trained up to MaxResource rounds and stopped at a rung
               (MinResource x eta^k rounds, eta = 3) unless its objective there is in the top
               1/eta of the jobs of its bracket that reached that rung (Optuna's
               HyperbandPruner: asynchronous successive halving in several brackets)

TrainingJobEarlyStoppingType Auto (Bayesian, Random, Grid): a job whose best objective so
far at a round is worse than the median of earlier completed jobs at that round is stopped
(SageMaker's rule; Optuna's MedianPruner, from the third completed job on).

The study lives in an Optuna journal file when the tuning job gives one, so that its
training jobs, other processes, report each round there and ask whether to go on.

Scaling: Linear and Auto sample uniformly; Logarithmic samples the log (positive ranges);
ReverseLogarithmic samples log(1 - x) (ranges inside [0, 1)), for values close to 1.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabpilot.errors import ConfigError
from tabpilot.training.hyperparameters import Param

STRATEGIES = ("Bayesian", "Random", "Grid", "Hyperband")
ETA = 3  # Hyperband's reduction factor: the top third of a rung goes on
MEDIAN_STARTUP = 3  # completed jobs before the median rule stops anyone


@dataclass(frozen=True)
class Range:
    name: str
    kind: str  # "int", "float" or "categorical"
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Linear"
    values: tuple[str, ...] = ()


def parse_ranges(given: dict[str, Any], spec: dict[str, Param], algorithm: str) -> list[Range]:
    """The request's ParameterRanges, checked against the algorithm's hyperparameters."""
    out: list[Range] = []
    for key, kind in (("IntegerParameterRanges", "int"), ("ContinuousParameterRanges", "float"),
                      ("CategoricalParameterRanges", "categorical")):
        for item in given.get(key, []):
            name = item["Name"]
            if name not in spec:
                raise ConfigError(f"ParameterRanges: {algorithm} has no hyperparameter {name!r}")
            if any(r.name == name for r in out):
                raise ConfigError(f"ParameterRanges: {name!r} is given twice")
            if kind == "categorical":
                out.append(Range(name, kind, values=tuple(item["Values"])))
                continue
            try:
                low, high = float(item["MinValue"]), float(item["MaxValue"])
            except ValueError:
                raise ConfigError(f"ParameterRanges: {name} needs numbers for MinValue and "
                                  f"MaxValue; got {item['MinValue']!r}, {item['MaxValue']!r}")\
                    from None
            if kind == "int" and (low != int(low) or high != int(high)):
                raise ConfigError(f"ParameterRanges: integer range {name} needs whole numbers")
            if low > high:
                raise ConfigError(f"ParameterRanges: {name} has MinValue {low:g} above "
                                  f"MaxValue {high:g}")
            scaling = item.get("ScalingType", "Auto")
            if scaling == "Logarithmic" and low <= 0:
                raise ConfigError(f"ParameterRanges: {name} is Logarithmic, so MinValue must be "
                                  f"above 0; got {low:g}")
            if scaling == "ReverseLogarithmic" and (kind == "int" or low < 0 or high >= 1):
                raise ConfigError(f"ParameterRanges: {name} is ReverseLogarithmic, which takes "
                                  "a continuous range inside [0, 1)")
            out.append(Range(name, kind, low, high, "Linear" if scaling == "Auto" else scaling))
    if not out:
        raise ConfigError("HyperParameterTuningJobConfig.ParameterRanges names no range to tune")
    return out


@dataclass(frozen=True)
class Stopping:
    """How a tuning job's training jobs are stopped early: `kind` "off", "median"
    (TrainingJobEarlyStoppingType Auto) or "hyperband" (rounds from `low` to `high`)."""

    kind: str = "off"
    low: int = 1
    high: int = 1

    def pruner(self) -> Any:
        import optuna

        if self.kind == "hyperband":
            return optuna.pruners.HyperbandPruner(self.low, self.high, ETA)
        if self.kind == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP)
        return optuna.pruners.NopPruner()

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "low": self.low, "high": self.high}


def stopping(strategy: str, early_stopping: str | None, hyperband: dict[str, Any] | None,
             resource: tuple[str, int | None] | None) -> Stopping:
    """The request's early stopping: Hyperband's MinResource / MaxResource (MaxResource
    defaults to the static value of the algorithm's resource, `resource` = (name, value)),
    or TrainingJobEarlyStoppingType. Hyperband stops jobs itself, so Auto is refused."""
    early = early_stopping or "Off"
    if early not in ("Off", "Auto"):
        raise ConfigError(f"TrainingJobEarlyStoppingType is Off or Auto; got {early!r}")
    if strategy != "Hyperband":
        if hyperband:
            raise ConfigError(f"StrategyConfig.HyperbandStrategyConfig is for Strategy "
                              f"Hyperband; this job's Strategy is {strategy}")
        return Stopping("median" if early == "Auto" else "off")
    if early == "Auto":
        raise ConfigError("Strategy Hyperband stops training jobs itself: set "
                          "TrainingJobEarlyStoppingType to Off")
    if resource is None:
        raise ConfigError("Strategy Hyperband needs an algorithm trained in rounds or "
                          "epochs (xgboost's num_round, linear-learner's epochs)")
    name, static = resource
    hyperband = hyperband or {}
    high = hyperband.get("MaxResource", static)
    if high is None:
        raise ConfigError(f"Strategy Hyperband: give HyperbandStrategyConfig.MaxResource or "
                          f"a static {name} (the most rounds a training job trains)")
    low = hyperband.get("MinResource", 1)
    if not 1 <= int(low) <= int(high):
        raise ConfigError(f"HyperbandStrategyConfig: MinResource {low} must be between 1 "
                          f"and MaxResource {high}")
    return Stopping("hyperband", int(low), int(high))


class Search:
    """Proposes the tuned hyperparameters of one training job after another.

    `journal` (a file path) keeps the study where the training jobs can reach it
    (`training/progress.py`); without it the study is in memory and nothing stops early."""

    def __init__(self, strategy: str, ranges: list[Range], maximize: bool,
                 seed: int | None = None, early: Stopping | None = None,
                 journal: Path | None = None, name: str = "tuning") -> None:
        import optuna

        if strategy not in STRATEGIES:
            raise ConfigError(f"Strategy {strategy}: tabpilot runs {', '.join(STRATEGIES)}")
        self.ranges = ranges
        self.early = early or Stopping()
        self._trials: dict[int, Any] = {}
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.grid: list[dict[str, str]] | None = None
        if strategy == "Grid":
            numeric = [r.name for r in ranges if r.kind != "categorical"]
            if numeric:
                raise ConfigError(f"Strategy Grid takes categorical ranges only; {numeric[0]} "
                                  "is numeric (list its values as a CategoricalParameterRange)")
            self.grid = [dict(zip([r.name for r in ranges], combo, strict=True))
                         for combo in itertools.product(*(r.values for r in ranges))]
        if strategy == "Grid":
            sampler: Any = optuna.samplers.GridSampler(
                {r.name: list(r.values) for r in ranges}, seed=seed)
        elif strategy == "Random":
            sampler = optuna.samplers.RandomSampler(seed=seed)
        else:
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
        self.journal, self.name = journal, name
        self.study = optuna.create_study(
            direction="maximize" if maximize else "minimize", sampler=sampler,
            pruner=self.early.pruner(), storage=open_journal(journal) if journal else None,
            study_name=name, load_if_exists=False)
        self._asked = 0

    @property
    def size(self) -> int | None:
        """How many distinct proposals there are (the grid's), or None: unbounded."""
        return None if self.grid is None else len(self.grid)

    def warm(self, done: list[tuple[dict[str, str], float]]) -> int:
        """Earlier training jobs' tuned hyperparameters and objectives (a warm start's
        parents), told to the study before it asks; those whose values do not fit this
        job's ranges are left out. Returns how many were told."""
        import optuna

        distributions = self._distributions()
        told = 0
        for given, value in done:
            params = self._internal(given)
            if params is None:
                continue
            try:  # a value outside this job's range is refused by the trial's own check
                frozen = optuna.trial.create_trial(params=params, distributions=distributions,
                                                   value=float(value))
            except ValueError:
                continue
            self.study.add_trial(frozen)
            told += 1
        return told

    def ask(self) -> tuple[int, dict[str, str]]:
        """A proposal's number and its hyperparameters as SageMaker sends them (strings)."""
        number = self._asked
        self._asked += 1
        trial = self.study.ask(self._distributions())
        self._trials[number] = trial
        values: dict[str, str] = {}
        for r in self.ranges:
            value = trial.params[r.name]
            if r.scaling == "ReverseLogarithmic":
                value = 1.0 - value
            values[r.name] = str(int(value)) if r.kind == "int" else \
                repr(float(value)) if r.kind == "float" else str(value)
        return number, values

    def live(self, number: int, metric: str) -> dict[str, Any] | None:
        """What proposal `number`'s training job needs to report its rounds and be stopped
        early (`training/progress.py`), or None when nothing stops early."""
        if self.journal is None or self.early.kind == "off":
            return None
        return {"journal": str(self.journal), "study": self.name,
                "trial": self._trials[number]._trial_id, "metric": metric,
                "stopping": self.early.as_dict()}

    def tell(self, number: int, value: float | None, stopped_early: bool = False) -> None:
        """The objective of proposal `number`, or None when its job failed or never
        reported the objective; `stopped_early`: its job was stopped before its end."""
        import optuna

        trial = self._trials.pop(number, None)
        if trial is None:
            return
        if value is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif stopped_early:
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(trial, value)

    def _internal(self, given: dict[str, str]) -> dict[str, Any] | None:
        """SageMaker's strings as the study's parameter values (None: one is missing or
        not a number)."""
        out: dict[str, Any] = {}
        for r in self.ranges:
            if r.name not in given:
                return None
            raw = given[r.name]
            try:
                out[r.name] = raw if r.kind == "categorical" else int(float(raw)) \
                    if r.kind == "int" else 1.0 - float(raw) \
                    if r.scaling == "ReverseLogarithmic" else float(raw)
            except ValueError:
                return None
        return out

    def _distributions(self) -> dict[str, Any]:
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        out: dict[str, Any] = {}
        for r in self.ranges:
            if r.kind == "categorical":
                out[r.name] = CategoricalDistribution(list(r.values))
            elif r.kind == "int":
                out[r.name] = IntDistribution(int(r.low), int(r.high),
                                              log=r.scaling == "Logarithmic")
            elif r.scaling == "ReverseLogarithmic":
                out[r.name] = FloatDistribution(1.0 - r.high, 1.0 - r.low, log=True)
            else:
                out[r.name] = FloatDistribution(r.low, r.high, log=r.scaling == "Logarithmic")
        return out


def open_journal(path: Path) -> Any:
    """An Optuna storage in a journal file, shared by the tuning worker and its training
    jobs (appends under a lock file, read back by every process)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))
