"""The AutoML job lifecycle: statuses, the trial loop, stop, and the views of a job."""

from tabpilot.jobs.runner import JobRunner, Progress
from tabpilot.jobs.views import candidates_view, describe_job, leaderboard

__all__ = ["JobRunner", "Progress", "candidates_view", "describe_job", "leaderboard"]
