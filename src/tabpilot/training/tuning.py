"""The search of a hyperparameter tuning job: SageMaker's ParameterRanges and strategies on
Optuna's samplers, ask / tell, nothing else (the API's tuning worker runs the training jobs).

    Bayesian  Optuna's TPE sampler (a tree-structured Parzen estimator, where SageMaker uses
              a Gaussian process: the same role, a different model), seeded
    Random    Optuna's random sampler
    Grid      every combination of the categorical ranges (SageMaker allows only those)

Scaling: Linear and Auto sample uniformly; Logarithmic samples the log (positive ranges);
ReverseLogarithmic samples log(1 - x) (ranges inside [0, 1)), for values close to 1.
Hyperband is not run yet (it needs the training jobs' per-iteration metrics fed back
while they train); such a request is refused in one line.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from tabpilot.errors import ConfigError
from tabpilot.training.hyperparameters import Param

STRATEGIES = ("Bayesian", "Random", "Grid")


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


class Search:
    """Proposes the tuned hyperparameters of one training job after another."""

    def __init__(self, strategy: str, ranges: list[Range], maximize: bool,
                 seed: int | None = None) -> None:
        import optuna

        if strategy not in STRATEGIES:
            raise ConfigError(f"Strategy {strategy}: tabpilot runs {', '.join(STRATEGIES)} "
                              "(Hyperband is not built yet)")
        self.ranges = ranges
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
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=5) \
            if strategy == "Bayesian" else optuna.samplers.RandomSampler(seed=seed)
        self.study = optuna.create_study(direction="maximize" if maximize else "minimize",
                                         sampler=sampler)
        self._asked = 0

    @property
    def size(self) -> int | None:
        """How many distinct proposals there are (the grid's), or None: unbounded."""
        return None if self.grid is None else len(self.grid)

    def ask(self) -> tuple[int, dict[str, str]]:
        """A proposal's number and its hyperparameters as SageMaker sends them (strings)."""
        number = self._asked
        self._asked += 1
        if self.grid is not None:
            return number, dict(self.grid[number % len(self.grid)])
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

    def tell(self, number: int, value: float | None) -> None:
        """The objective of proposal `number`, or None when its job failed or never
        reported the objective."""
        import optuna

        trial = self._trials.pop(number, None)
        if trial is None:
            return
        if value is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, value)

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
