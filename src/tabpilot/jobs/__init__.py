"""The AutoML job lifecycle: statuses, the trial loop, stop, and the views of a job.

The names below load on first use: `tabpilot.jobs.status` or `.progress` (what the CLI's
progress output needs) must not import the runner and every library a job trains with.
"""

from importlib import import_module
from typing import Any

_WHERE = {"JobRunner": "tabpilot.jobs.runner", "Progress": "tabpilot.jobs.progress",
          "candidates_view": "tabpilot.jobs.views", "describe_job": "tabpilot.jobs.views",
          "leaderboard": "tabpilot.jobs.views"}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'tabpilot.jobs' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
