"""How much of the time limit the steps after the search keep: the stack, the greedy
ensemble and the job's end.

Each share is a fraction of the limit, with a cap. On a long job the fraction is far more
than the step costs (a 300 s job kept 39 s for a stack and an ensemble that took 3.4 s, and
12 s to end in under one): there an estimate of the step's cost, doubled, bounds the share
instead, so the search gets the time. The estimate counts what the step does: load its
members (their bytes), score the validation rows, fit the stacker, time the model. On a
short job the fraction is the smaller and nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from tabpilot.ensemble.stacking import HOLDOUT_FOLDS
from tabpilot.jobs import ensembling, stacking

SAFETY = 2.0  # an estimate is doubled: a loaded machine, a slow disk
SCORE_SECONDS_PER_ROW = 2e-7  # one metric evaluation (an AUC sorts its rows)
GREEDY_EVALUATIONS = ensembling.MAX_MEMBERS * 25  # candidates x greedy steps
STACKER_SECONDS_PER_VALUE = 1e-6  # a linear stacker's fits, per row and feature (adult's
# 36.6k rows x 6 members, 6 fits: 0.9 s with loading, packaging and timing)


def finalisation_margin(limit: float) -> float:
    """Time kept after everything else for ending the job (well under a second)."""
    return min(max(2.0, 0.04 * limit), 5.0)


def ensemble_seconds(limit: float, member_bytes: Sequence[float], n_valid: int) -> float:
    """The greedy ensemble's share: select, load its members, package and time it."""
    cap = min(max(1.0, 0.08 * limit), 30.0)
    members = list(member_bytes)[:ensembling.MAX_MEMBERS]
    estimate = (ensembling.SECONDS_PER_MEMBER * len(members) + ensembling.TIMING_SECONDS
                + sum(members) / ensembling.LOAD_BYTES_PER_SECOND
                + GREEDY_EVALUATIONS * n_valid * SCORE_SECONDS_PER_ROW)
    return min(cap, 1.0 + SAFETY * estimate)


def stack_seconds(limit: float, member_bytes: Sequence[float], n_valid: int,
                  n_classes: int) -> float:
    """The stack's share: fit the stacker fold by fold, load its members, package, time."""
    cap = min(max(1.0, 0.05 * limit), 20.0)
    members = list(member_bytes)[:stacking.MAX_MEMBERS]
    # a binary or regression member gives one feature (logit, value), a multiclass one k
    features = len(members) * (n_classes if n_classes > 2 else 1)
    estimate = (stacking.SECONDS_PER_MEMBER * len(members) + stacking.PACKAGE_SECONDS
                + sum(members) / ensembling.LOAD_BYTES_PER_SECOND
                + (HOLDOUT_FOLDS + 1) * n_valid * features * STACKER_SECONDS_PER_VALUE)
    return min(cap, 1.0 + SAFETY * estimate)
