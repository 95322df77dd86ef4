"""What every built-in algorithm module provides, and what a running job gives it.

An algorithm module declares `NAME`, `HYPERPARAMETERS` (hyperparameters.Param by the
built-in's names), `LABELLED` (whether CSV's first column is the label), `CHANNELS` (the
channel names it reads; `train` always), and two functions:

    fit(hp, channels, model_dir, control) -> {metric name: final value}
        train on channels["train"] (and "validation"/"test" when given), write the model
        files into model_dir; they become model.tar.gz as they are
    load(model_dir) -> Predictor
        read those files back, never by unpickling

Metric names are the built-in's (`validation:auc`, `train:rmse`, `test:msd`...), so that
FinalMetricDataList and a tuner's objective read as they do on SageMaker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger("tabpilot.training")


@dataclass
class Control:
    """A running job's side of the worker: its deadline, the stop flag and the log."""

    deadline: float = float("inf")  # time.time() at which to stop (MaxRuntimeInSeconds)
    stop_requested: Callable[[], bool] = lambda: False
    stopped_by: str | None = None  # "stop" or "deadline" once training was cut short
    curves: dict[str, list[float]] = field(default_factory=dict)  # metric -> per iteration
    # a tuning job's early stopping (training/progress.py): True once the job should stop
    judge: Callable[[int, dict[str, float]], bool] | None = None

    def should_stop(self) -> bool:
        if self.stopped_by is None:
            if time.time() >= self.deadline:
                self.stopped_by = "deadline"
            elif self.stop_requested():
                self.stopped_by = "stop"
        return self.stopped_by is not None

    def record(self, iteration: int, values: dict[str, float]) -> None:
        """One iteration's metrics, logged as the built-in containers print them
        (`[3]#011train-rmse:0.41#011validation-rmse:0.47`, tabs here)."""
        for name, value in values.items():
            self.curves.setdefault(name, []).append(float(value))
        shown = "\t".join(f"{k.replace(':', '-')}:{v:.5f}" for k, v in values.items())
        log.info("[%d]\t%s", iteration, shown)
        if self.judge is not None and self.stopped_by is None and self.judge(iteration, values):
            self.stopped_by = "stop"  # ends Stopped, as SageMaker's early-stopped jobs do


class Predictor:
    """A built-in model as its container serves it: rows of numbers in, one record per row
    out (`{"score": ...}`, `{"predicted_label": ..., "score": ...}`...)."""

    features: int  # how many columns a request row has
    json_key = "predictions"  # the JSON response's list: {"predictions": [...]}

    def records(self, X: np.ndarray) -> list[dict[str, object]]:
        raise NotImplementedError
