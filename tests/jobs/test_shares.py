"""The time kept after the search: fractions of the limit, bounded by the steps' cost."""

from __future__ import annotations

import pytest

from tabpilot.jobs import shares

MB = 1e6


def test_a_short_job_keeps_the_fractions_of_its_limit() -> None:
    # 60 s, twenty 5 MB candidates, 10k validation rows: every estimate is over its cap
    assert shares.ensemble_seconds(60, [5 * MB] * 20, 10_000) == pytest.approx(0.08 * 60)
    assert shares.stack_seconds(60, [5 * MB] * 6, 10_000, 2) == pytest.approx(0.05 * 60)
    assert shares.finalisation_margin(60) == pytest.approx(2.4)


def test_a_long_job_keeps_what_the_steps_cost_not_the_fractions() -> None:
    ensemble = shares.ensemble_seconds(300, [5 * MB] * 20, 10_000)
    stack = shares.stack_seconds(300, [5 * MB] * 6, 10_000, 2)
    assert 2.0 < ensemble < 0.5 * 0.08 * 300
    assert 2.0 < stack < 0.05 * 300
    assert shares.finalisation_margin(300) == 5.0


def test_large_members_or_many_rows_take_the_share_back_to_its_cap() -> None:
    small = shares.ensemble_seconds(300, [5 * MB] * 20, 10_000)
    assert shares.ensemble_seconds(300, [1000 * MB] * 20, 10_000) == pytest.approx(24.0)
    assert small < shares.ensemble_seconds(300, [5 * MB] * 20, 200_000) <= 24.0
    assert shares.stack_seconds(300, [1000 * MB] * 6, 10_000, 7) == pytest.approx(15.0)
    # more members and classes cost more
    assert shares.stack_seconds(300, [5 * MB] * 6, 50_000, 7) > \
        shares.stack_seconds(300, [5 * MB] * 2, 50_000, 2)


def test_only_the_ensembles_pool_counts() -> None:
    pool = [5 * MB] * 20
    assert shares.ensemble_seconds(300, pool + [900 * MB], 10_000) == \
        shares.ensemble_seconds(300, pool, 10_000)
