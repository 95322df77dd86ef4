"""Names of jobs, candidates, models, endpoints and other resources.

Every name a user gives becomes part of a path (jobs/<job>/candidates/<candidate>/,
capture/<endpoint>/) or a key in the store, so every name is checked here, with
SageMaker's rule, before anything uses it: letters, digits and hyphens, starting and
ending with a letter or digit; at most 63 characters (AutoML job names: 32; experiments,
trials and trial components: 120).
"""

from __future__ import annotations

import re

from tabpilot.errors import ConfigError, shown

_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}$")  # each kind's length: LIMITS
# candidates are named after their family, and two families hold an underscore
# (random_forest-003, extra_trees-011-full); still no dot or slash, so never a path
_CANDIDATE = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
# AutoMLJobName; CandidateName; SageMaker Experiments' entities; every other kind: 63
LIMITS = {"job": 32, "candidate": 64, "experiment": 120, "trial": 120, "trial component": 120}


def is_valid(name: object, kind: str = "name") -> bool:
    pattern = _CANDIDATE if kind == "candidate" else _NAME
    return isinstance(name, str) and bool(pattern.match(name)) and \
        len(name) <= LIMITS.get(kind, 63)


def check(name: object, kind: str = "name") -> str:
    """`name` itself, or a ConfigError saying what a `kind` name may hold."""
    if is_valid(name, kind):
        return name  # type: ignore[return-value]
    raise ConfigError(problem(name, kind))


def problem(name: object, kind: str = "name") -> str:
    marks = "hyphens and underscores" if kind == "candidate" else "hyphens"
    return (f"{kind} name {shown(name)} is invalid; use 1-{LIMITS.get(kind, 63)} letters, "
            f"digits and {marks}, starting and ending with a letter or digit")
