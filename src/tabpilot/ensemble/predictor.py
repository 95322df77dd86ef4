"""An ensemble is a weighted average of member predictors' probabilities or values; a
stack feeds them to a level-2 model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.artifacts.predictor import BasePredictor
from tabpilot.ensemble.stacking import stack_features, stacker_predict
from tabpilot.tasks import ProblemType


class _Members:
    """A predictor made of member predictors: its input columns are theirs, in order."""

    members: list[BasePredictor]

    @property
    def features(self) -> list[str]:  # type: ignore[override]
        seen: dict[str, None] = {}
        for member in self.members:
            seen.update(dict.fromkeys(member.features))
        return list(seen)


@dataclass
class EnsemblePredictor(_Members, BasePredictor):
    members: list[BasePredictor]
    weights: list[float]
    names: list[str]
    problem_type: ProblemType
    classes: list | None = None
    threshold: float | None = None

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        total = None
        for member, weight in zip(self.members, self.weights, strict=True):
            part = member.raw_predict(X) * weight
            total = part if total is None else total + part
        assert total is not None
        return total


@dataclass
class StackPredictor(_Members, BasePredictor):
    """A level-2 model over member predictors (tabpilot.ensemble.stacking)."""

    members: list[BasePredictor]
    names: list[str]
    stacker: Any  # a fitted sklearn pipeline over stack_features of the members
    problem_type: ProblemType
    classes: list | None = None
    threshold: float | None = None

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        features = stack_features([m.raw_predict(X) for m in self.members], self.problem_type)
        return stacker_predict(self.stacker, features, len(self.classes or []))
