"""Cost-aware scheduling for large tables: cheap subsamples first, then successive halving.

On a table of LARGE_ROWS rows or more, each fast family's first (default) configuration
trains on every row at once: boosting on so many rows runs to its time share whatever the
sample, so screening it saves no time (on 750k rows of diamonds its RMSE went from 504 to
531 when screened). Every other portfolio configuration is first trained on a screening
subsample, and promoted to every row (with twice a trial's time) once its score ranks in
the top 1/ETA of the screened results so far (ASHA's asynchronous rule: no trial waits for
a rung to fill). The slow families (forests, the MLP) never train on more than SLOW_ROWS
rows: past that they cost minutes and gigabytes for little. A family with `max_rows`
(memory per row several times the table's: linear's dense one-hot matrix, CatBoost)
never trains on more than that many.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tabpilot.models import FAMILIES

LARGE_ROWS = 100_000
# the screening subsample: 1/SCREEN_SHARE of the rows, within these bounds; small enough that
# a screening fit ends well before its time share (on 750k rows, 1/8 did not: it saved nothing)
SCREEN_MIN_ROWS, SCREEN_MAX_ROWS = 20_000, 50_000
SCREEN_SHARE = 20
SLOW_ROWS = 50_000
ETA = 3


@dataclass
class RowBudget:
    """Training rows a trial may use; None: all of them."""

    n_rows: int

    @property
    def large(self) -> bool:
        return self.n_rows >= LARGE_ROWS

    def screen(self, family: str) -> int | None:
        if not self.large:
            return None
        rows = min(max(SCREEN_MIN_ROWS, self.n_rows // SCREEN_SHARE), SCREEN_MAX_ROWS)
        return min(rows, self.full(family) or self.n_rows)

    def full(self, family: str) -> int | None:
        if not self.large:
            return None
        spec = FAMILIES[family]
        cap = SLOW_ROWS if spec.slow else spec.max_rows
        return cap if cap is not None and self.n_rows > cap else None


@dataclass
class Screened:
    family: str
    params: dict[str, Any]
    value: float


@dataclass
class Promotions:
    """The screening rung and who has left it."""

    greater_is_better: bool
    eta: int = ETA
    rung: list[Screened] = field(default_factory=list)
    promoted: set[int] = field(default_factory=set)  # indices into rung

    def add(self, family: str, params: dict[str, Any], value: float | None) -> None:
        if value is not None and value == value:
            self.rung.append(Screened(family, params, value))

    def next(self) -> Screened | None:
        """The best screened configuration in the top 1/eta that has not been promoted."""
        top = len(self.rung) // self.eta
        order = sorted(range(len(self.rung)), key=lambda i: self.rung[i].value,
                       reverse=self.greater_is_better)
        for i in order[:top]:
            if i not in self.promoted:
                self.promoted.add(i)
                return self.rung[i]
        return None
