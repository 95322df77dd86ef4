"""A tuning job's training job, told while it trains whether to go on.

The tuning worker keeps its study in an Optuna journal file (`training/tuning.py`) and
gives each training job it starts a `live` entry: the journal, the study, the job's trial
and the objective metric. As the job trains, every round's objective is reported to that
trial (`Trial.report`, step = rounds so far) and the study's pruner says whether the job
goes on: Hyperband's successive halving at its rungs, or the median rule of
TrainingJobEarlyStoppingType Auto. The decision is taken in the training job, at the
round itself, so a fast job cannot run past a rung before anyone looked; the worker reads
the same journal when the job ends. A job told to stop ends Stopped with the model and
metrics of its last round, as SageMaker's early-stopped jobs do.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from tabpilot.training.tuning import Stopping, open_journal

log = logging.getLogger("tabpilot.training")


class Judge:
    """`judge(iteration, metrics) -> True` once the job should stop early."""

    def __init__(self, live: dict[str, Any]) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.metric = live["metric"]
        study = optuna.load_study(study_name=live["study"],
                                  storage=open_journal(Path(live["journal"])),
                                  pruner=Stopping(**live["stopping"]).pruner())
        self.trial = optuna.trial.Trial(study, live["trial"])
        self.stopped_at: int | None = None

    def __call__(self, iteration: int, metrics: dict[str, float]) -> bool:
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return False
        step = iteration + 1  # rounds trained so far: Hyperband's resource
        self.trial.report(float(value), step)
        if self.trial.should_prune():
            self.stopped_at = step
            log.info("stopped early by the tuning job after %d rounds: %s = %.6g", step,
                     self.metric, value)
            return True
        return False


def judge(live: dict[str, Any] | None) -> Judge | None:
    """The judge of a training job its tuning job may stop early, or None."""
    return Judge(live) if live else None
