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
    # doubled, plus a second: 20 members loaded (2 s), timed (1 s), the fast ensemble's
    # packaging (1.5 s), 100 MB read (0.25 s), 500 greedy evaluations of 10k rows (1 s)
    # for the ensemble, the fast one and each rung of its budget ladder (3)
    assert ensemble == pytest.approx(1.0 + 2 * (2.0 + 1.0 + 1.5 + 0.25 + 5 * 1.0))
    assert ensemble < 0.08 * 300
    assert 2.0 < stack < 0.05 * 300
    # the stack: six members loaded and packaged (3 s), 30 MB read, and its stacker's
    # six fits (five folds, then every row) over all six members, then once more for each
    # member its pruning tries to drop: 7 x 6 fits of 10k rows x 6 features
    from tabpilot.jobs import ensembling, stacking
    assert stack == pytest.approx(1.0 + 2 * (
        stacking.packaging_seconds(6) + 30 * MB / ensembling.LOAD_BYTES_PER_SECOND
        + 7 * 6 * 10_000 * 6 * shares.STACKER_SECONDS_PER_VALUE))
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


def test_compiles_of_uncompiled_members_raise_a_long_job_s_shares() -> None:
    pool, rows = [5 * MB] * 20, 2_000  # estimates well under the cap
    assert shares.ensemble_seconds(300, pool, rows, [0.0] * 20) == \
        shares.ensemble_seconds(300, pool, rows)  # compiled members: nothing more
    one = shares.ensemble_seconds(300, pool, rows, [2.0] + [0.0] * 19)
    two = shares.ensemble_seconds(300, pool, rows, [2.0, 2.0] + [0.0] * 18)
    assert shares.ensemble_seconds(300, pool, rows) < one < two
    assert two - one == pytest.approx(shares.SAFETY * 2.0)
    stack = shares.stack_seconds(300, [5 * MB] * 6, rows, 2)
    assert shares.stack_seconds(300, [5 * MB] * 6, rows, 2, [3.0] + [0.0] * 5) == \
        pytest.approx(stack + shares.SAFETY * 3.0)


def test_a_compile_past_the_absolute_cap_still_keeps_to_the_fraction_of_the_limit() -> None:
    pool, big = [5 * MB] * 20, [18.0] + [0.0] * 19  # a 228 MB LightGBM bag to compile
    # one hour: 8 % is 288 s, so the 30 s cap grows by the doubled compile
    assert shares.ensemble_seconds(3600, pool, 10_000, big) > 30.0
    assert shares.ensemble_seconds(3600, pool, 10_000, [1000.0] * 20) == pytest.approx(
        30.0 + shares.ENSEMBLE_COMPILE_CAP)
    assert shares.stack_seconds(3600, [5 * MB] * 6, 10_000, 2, [1000.0] * 6) == \
        pytest.approx(20.0 + shares.STACK_COMPILE_CAP)
    # five minutes: the fraction binds; a compile that does not fit is left out instead
    assert shares.ensemble_seconds(300, pool, 10_000, big) == pytest.approx(0.08 * 300)


def test_compile_seconds_read_the_candidates_folders(tmp_path) -> None:
    # no model there (a candidate whose folder is gone): nothing to compile
    assert shares.compile_seconds([tmp_path / "gone" / "model"]) == [0.0]
