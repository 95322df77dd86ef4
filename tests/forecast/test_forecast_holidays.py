"""HolidayConfig: each period's public holidays (the `holidays` package, offline) as a
feature of the global LightGBM candidate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabpilot.errors import ConfigError
from tabpilot.forecast.gbm import holiday_counts
from tabpilot.forecast.job import fit
from tabpilot.forecast.request import ForecastRequest


@pytest.mark.parametrize("stamps,freq,counts", [
    (["2024-07-04", "2024-07-05", "2024-12-25"], "D", [1, 0, 1]),
    (["2024-07-04 13:00", "2024-07-05 13:00"], "h", [1, 0]),  # an hour counts its day's
    (["2024-12-23", "2024-12-30"], "7D", [1, 1]),  # Christmas; New Year's Day
    (["2024-11-01", "2024-12-01", "2024-08-01"], "MS", [2, 1, 0]),  # Veterans, Thanksgiving
])
def test_holidays_are_counted_per_period(stamps, freq, counts):
    assert holiday_counts(pd.DatetimeIndex(stamps), freq, "US").tolist() == counts


def test_an_unknown_country_is_one_line():
    with pytest.raises(ConfigError, match="holiday country 'Atlantis' is not one"):
        ForecastRequest.build(target="y", timestamp="ds", frequency="1D", horizon=7,
                              holiday_country="Atlantis")


@pytest.mark.slow  # two LightGBM jobs on two years of days
def test_the_holiday_feature_lets_lightgbm_forecast_holiday_peaks(tmp_path):
    days = pd.date_range("2023-01-01", "2024-12-31", freq="D")  # 20 holidays to learn from
    rng = np.random.default_rng(0)
    peaks = holiday_counts(days, "D", "US")
    table = pd.DataFrame({"ds": days, "y": 20 + 25 * peaks + rng.normal(0, 1, len(days))})

    def mase(country: str | None, name: str) -> float:
        request = ForecastRequest.build(
            target="y", timestamp="ds", frequency="1D", horizon=14, time_limit=60, n_windows=1,
            candidates=["LightGBM"], name=name, holiday_country=country,
            execute_notebook=False)
        board = fit(table, request, tmp_path).leaderboard.set_index("candidate")
        return board.at["LightGBM", "MASE"]

    # the backtest window (Dec 18 - 31) holds Christmas
    assert mase("US", "with") < 0.5 * mase(None, "without")
