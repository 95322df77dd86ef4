"""An ensemble is a weighted average of member predictors' probabilities or values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabpilot.artifacts.predictor import BasePredictor
from tabpilot.tasks import ProblemType


@dataclass
class EnsemblePredictor(BasePredictor):
    members: list[BasePredictor]
    weights: list[float]
    names: list[str]
    problem_type: ProblemType
    classes: list | None = None
    threshold: float | None = None

    @property
    def features(self) -> list[str]:  # type: ignore[override]
        seen: dict[str, None] = {}
        for member in self.members:
            seen.update(dict.fromkeys(member.features))
        return list(seen)

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        total = None
        for member, weight in zip(self.members, self.weights, strict=True):
            part = member.raw_predict(X) * weight
            total = part if total is None else total + part
        assert total is not None
        return total
