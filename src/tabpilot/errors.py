"""User-facing errors: each says what was wrong and how to fix it, in one line."""

from __future__ import annotations


def shown(value: object, limit: int = 100) -> str:
    """`value` as a message shows it: the plain value's repr, so a numpy scalar reads
    `0`, not `np.int64(0)`; cut to `limit` characters, so that a 10 MB column name or
    cell still leaves a one-line message a person can read."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        value = value.item()  # type: ignore[attr-defined]
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."


class TabpilotError(Exception):
    """An error caused by the user's input or request, shown as one line (CLI exit code 2)."""


class DataError(TabpilotError):
    """The table cannot be read or is unusable for training."""


class TargetError(TabpilotError):
    """The target column is missing, empty or unsuitable for the problem type."""


class ConfigError(TabpilotError):
    """A setting is invalid (metric, problem type, time limit, feature types...)."""


class JobExistsError(TabpilotError):
    """A job of that name is already in the workspace."""


class ResourceExistsError(JobExistsError):
    """A model, endpoint config or other named resource of that name exists already."""


class NotFoundError(TabpilotError):
    """A job, candidate or model that was asked for does not exist."""


class ModelIntegrityError(TabpilotError):
    """A packaged model's files do not match its manifest."""


class MissingDependencyError(TabpilotError):
    """An optional dependency is not installed."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"{module} is not installed; install it with: pip install 'tabpilot[{extra}]'"
        )


class JobStateError(TabpilotError):
    """The job is not in a state that allows what was asked (resume a running job...)."""


class StoreUnavailableError(TabpilotError):
    """The metadata store's database cannot be reached or opened (a server that is down,
    a wrong URL or password)."""


class ExecutorUnavailableError(TabpilotError):
    """The executor that should run trials cannot be reached (a Ray cluster that is down
    or a wrong ray:// address)."""
