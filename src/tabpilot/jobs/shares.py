"""How much of the time limit the steps after the search keep: the stack, the greedy
ensemble and the job's end.

Each share is a fraction of the limit, with a cap. On a long job the fraction is far more
than the step costs (a 300 s job kept 39 s for a stack and an ensemble that took 3.4 s, and
12 s to end in under one): there an estimate of the step's cost, doubled, bounds the share
instead, so the search gets the time. The estimate counts what the step does: load its
members (their bytes), score the validation rows, fit the stacker, time the model, and
compile the members whose trial ran out of time before compiling them (jobs/compile_cost.py;
uncompiled, such a member answers on the Python path, 126 ms a row for a 228 MB one). On a
short job the fraction is the smaller and nothing changes.

The caps (30 s, 20 s) bound loading and scoring, a few seconds even for 1 GB of members.
Compiling grows with the members' bytes far faster for boosting (0.08 s per MB: a 228 MB
LightGBM bag, 18 s, doubled 36 s) and is worth its time on a long job, so a cap grows by
the doubled compile estimate, up to 90 s (60 s) more; the fraction of the limit still
bounds the share, and a compile that does not fit leaves its member out of the ensemble
or the stack instead (jobs/ensembling.py `choose`), so the job's model answers fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tabpilot.ensemble.stacking import HOLDOUT_FOLDS
from tabpilot.jobs import compile_cost, ensembling, stacking

SAFETY = 2.0  # an estimate is doubled: a loaded machine, a slow disk
SCORE_SECONDS_PER_ROW = 2e-7  # one metric evaluation (an AUC sorts its rows)
GREEDY_EVALUATIONS = ensembling.MAX_MEMBERS * 25  # candidates x greedy steps
STACKER_SECONDS_PER_VALUE = 1e-6  # a linear stacker's fits, per row and feature (adult's
# 36.6k rows x 6 members, 6 fits: 0.9 s with loading, packaging and timing)
# seconds a cap may grow by for compiles: a 1 GB LightGBM bag (80 s) on a long job
ENSEMBLE_COMPILE_CAP = 90.0
STACK_COMPILE_CAP = 60.0


# the shortest job: a first model's trial (process start, fit, package, latency) on a
# small table, and the job's end; measured 4.3 s for telco churn's 7k rows, 5-fold bagged,
# on a quiet machine (on one running twice as many processes as it has cores, no constant
# holds: analysis alone took 4 s there)
FIRST_MODEL_SECONDS = 5.0
FIT_SECONDS_PER_VALUE = 2e-7  # a first LightGBM per row and column, all folds (adult: 0.1 s)


def minimum_time_limit(rows: int, columns: int, read_seconds: float,
                       spent_seconds: float | None = None) -> int:
    """The shortest time limit a job on this table is accepted with: the time spent so far
    (`spent_seconds`: reading the table and, in a new process or workspace, one-time
    imports and the store's creation; `read_seconds` when not given), reading it again
    (the trials' shared copy), a first model and the job's end. Shorter limits are
    refused up front: a job must always leave a model."""
    spent = read_seconds if spent_seconds is None else spent_seconds
    need = (spent + read_seconds + FIRST_MODEL_SECONDS + FIT_SECONDS_PER_VALUE * rows * columns
            + finalisation_margin(FIRST_MODEL_SECONDS))
    return int(need) + 1


def finalisation_margin(limit: float) -> float:
    """Time kept after everything else for ending the job (well under a second)."""
    return min(max(2.0, 0.04 * limit), 5.0)


def compile_seconds(model_dirs: Sequence[Path]) -> list[float]:
    """Each candidate's compile at an ensemble's or a stack's packaging: zero when it has
    a compiled path (or can have none), else an estimate from its family and bytes."""
    return [compile_cost.seconds([d]) for d in model_dirs]


def ensemble_seconds(limit: float, member_bytes: Sequence[float], n_valid: int,
                     compile_s: Sequence[float] = ()) -> float:
    """The greedy ensemble's share: select, load its members, compile those without a
    compiled path (`compile_s`, beside `member_bytes`), package and time it; then the
    fast ensemble's: a selection per rung of its budget ladder, and one more at its
    fallback budget when the ladder stopped before it, and its packaging (a few small
    members, timed)."""
    members = list(member_bytes)[:ensembling.MAX_MEMBERS]
    compiles = sum(list(compile_s)[:ensembling.MAX_MEMBERS])
    cap = min(max(1.0, 0.08 * limit), 30.0 + min(ENSEMBLE_COMPILE_CAP, SAFETY * compiles))
    estimate = (ensembling.SECONDS_PER_MEMBER * len(members) + ensembling.TIMING_SECONDS
                + ensembling.FAST_PACKAGE_SECONDS
                + sum(members) / ensembling.LOAD_BYTES_PER_SECOND
                + (2 + len(ensembling.FAST_BUDGETS_MS)) * GREEDY_EVALUATIONS * n_valid
                * SCORE_SECONDS_PER_ROW + compiles)
    return min(cap, 1.0 + SAFETY * estimate)


def stack_seconds(limit: float, member_bytes: Sequence[float], n_valid: int,
                  n_classes: int, compile_s: Sequence[float] = ()) -> float:
    """The stack's share: fit the stacker fold by fold (once over all its members, then
    once for each member its pruning tries without, about one round of them), load its
    members, compile those without a compiled path (`compile_s`, beside `member_bytes`),
    package, time."""
    members = list(member_bytes)[:stacking.MAX_MEMBERS]
    compiles = sum(list(compile_s)[:stacking.MAX_MEMBERS])
    cap = min(max(1.0, 0.05 * limit), 20.0 + min(STACK_COMPILE_CAP, SAFETY * compiles))
    # a binary or regression member gives one feature (logit, value), a multiclass one k
    features = len(members) * (n_classes if n_classes > 2 else 1)
    estimate = (stacking.packaging_seconds(len(members))
                + sum(members) / ensembling.LOAD_BYTES_PER_SECOND
                + (1 + len(members)) * (HOLDOUT_FOLDS + 1) * n_valid * features
                * STACKER_SECONDS_PER_VALUE + compiles)
    return min(cap, 1.0 + SAFETY * estimate)
