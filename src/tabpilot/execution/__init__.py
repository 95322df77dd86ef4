"""Running trials: the Executor interface and its local process-pool implementation."""

from tabpilot.execution.base import Executor, TrialContext, TrialResult, TrialTask
from tabpilot.execution.local import LocalProcessExecutor

__all__ = ["Executor", "LocalProcessExecutor", "TrialContext", "TrialResult", "TrialTask"]
