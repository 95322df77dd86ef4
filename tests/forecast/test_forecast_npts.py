"""NPTS (forecast/npts.py): quantiles from its samples, seeded draws, the seasonal variant,
and its place among the candidates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabpilot.forecast.candidates import Setting, candidates_for
from tabpilot.forecast.npts import NPTS, sample_paths, summarize

QUANTILES = (0.1, 0.5, 0.9)


def _histories(seed: int = 0, items: int = 3, n: int = 60) -> dict[str, pd.Series]:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-01", periods=n, freq="D")
    return {f"i{k}": pd.Series(rng.poisson(3 + k, n).astype(float), index=index)
            for k in range(items)}


def _setting(season: int = 7, seed: int = 0, quantiles=QUANTILES) -> Setting:
    return Setting(horizon=10, quantiles=tuple(quantiles), season=season, freq="D", seed=seed)


@pytest.mark.parametrize("season", [1, 7])
def test_quantiles_never_cross_and_every_value_is_one_the_history_holds(season):
    hist = _histories()
    out = NPTS(_setting(season, quantiles=(0.05, 0.1, 0.5, 0.9, 0.95))).forecast(hist)
    for item, values in out.items():
        assert values.shape == (10, 6)
        assert np.all(np.diff(values[:, 1:], axis=1) >= 0)
        low, high = hist[item].min(), hist[item].max()
        assert np.all((values >= low) & (values <= high))


def test_the_same_seed_repeats_the_forecast_and_another_seed_does_not():
    hist = _histories()
    first = NPTS(_setting(seed=3)).forecast(hist)
    again = NPTS(_setting(seed=3)).forecast(hist)
    other = NPTS(_setting(seed=4)).forecast(hist)
    assert all(np.array_equal(first[i], again[i]) for i in hist)
    assert any(not np.array_equal(first[i], other[i]) for i in hist)


def test_an_items_forecast_does_not_depend_on_the_items_beside_it():
    hist = _histories()
    alone = NPTS(_setting()).forecast({"i2": hist["i2"]})
    together = NPTS(_setting()).predict(dict(reversed(list(hist.items()))))
    assert np.array_equal(alone["i2"], together["i2"])


def test_the_seasonal_variant_draws_only_from_the_same_phase():
    phase_values = np.array([1.0, 5.0, 2.0, 8.0, 3.0, 0.0, 9.0])
    y = np.tile(phase_values, 8) + np.repeat(np.arange(8), 7) * 0.01  # weeks differ a little
    paths = sample_paths(y, 14, season=7, rng=np.random.default_rng(0))
    for step in range(14):
        assert np.all(np.abs(paths[:, step] - phase_values[(len(y) + step) % 7]) < 0.1)


def test_the_kernel_favours_recent_values_and_decay_zero_draws_uniformly():
    y = np.r_[np.zeros(50), np.ones(50)]  # the recent half is all ones
    recent = sample_paths(y, 1, decay=1.0, samples=2000, rng=np.random.default_rng(0))
    uniform = sample_paths(y, 1, decay=0.0, samples=2000, rng=np.random.default_rng(0))
    assert recent.mean() > 0.99
    assert 0.45 < uniform.mean() < 0.55


def test_summarize_takes_the_quantiles_of_the_paths():
    paths = np.arange(101, dtype=float)[:, None] * np.ones((1, 3))
    out = summarize(paths, (0.1, 0.9))
    assert np.allclose(out[0], [50.0, 10.0, 90.0])


def test_npts_is_a_default_candidate_that_ignores_covariates():
    names = [c.name for c in candidates_for(_setting(), _histories())]
    assert names[:2] == ["SeasonalNaive", "NPTS"]
    npts = next(c for c in candidates_for(_setting(), _histories()) if c.name == "NPTS")
    assert npts.uses_covariates is False
