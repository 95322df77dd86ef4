"""The request's rules (SageMaker's) and the bad-input lines of series preparation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabpilot.errors import ConfigError, DataError
from tabpilot.forecast.request import ForecastRequest, pandas_frequency, season_length
from tabpilot.forecast.series import prepare


def request(**kw) -> ForecastRequest:
    base = {"target": "y", "timestamp": "ds", "item_id": "id", "frequency": "1D", "horizon": 7}
    return ForecastRequest.build(**{**base, **kw})


@pytest.mark.parametrize("freq", ["1H", "H", "15min", "59min", "1D", "6D", "1W", "4W", "1M",
                                  "11M", "1Y", "Y"])
def test_sagemaker_frequencies_are_accepted(freq):
    assert request(frequency=freq).frequency == freq


@pytest.mark.parametrize("freq", ["60min", "24H", "7D", "5W", "12M", "2Y", "1Q", "1d", ""])
def test_frequencies_sagemaker_refuses_are_refused(freq):
    with pytest.raises(ConfigError, match="ForecastFrequency"):
        request(frequency=freq)


def test_frequency_maps_to_pandas_and_a_season():
    assert pandas_frequency("15min") == "15min" and pandas_frequency("1M") == "1MS"
    assert season_length("1D") == 7 and season_length("1H") == 24 and season_length("1M") == 12
    assert season_length("15min") == 96 and season_length("5D") == 1


def test_quantiles_read_both_ways_and_are_bounded():
    assert request(quantiles="p10,0.5,p90").quantiles == [0.1, 0.5, 0.9]
    assert request().quantiles == [0.1, 0.5, 0.9]
    with pytest.raises(ConfigError, match="1 to 5"):
        request(quantiles="0.1,0.2,0.3,0.4,0.5,0.6")
    with pytest.raises(ConfigError, match="0.01-0.99"):
        request(quantiles="0.995")
    with pytest.raises(ConfigError, match="grouping"):
        request(grouping=list("abcdef"))
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="positive number of seconds"):
            request(time_limit=bad)


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_irregular_timestamps_are_refused(table):
    table.loc[3, "ds"] = table.loc[3, "ds"] + pd.Timedelta(hours=5)
    with pytest.raises(DataError) as exc:
        prepare(table, request())
    assert "does not fall on the 1D grid" in one_line(exc) and "item0" in one_line(exc)


def test_duplicate_rows_are_refused_unless_aggregated(table):
    doubled = pd.concat([table, table.iloc[[5]]], ignore_index=True)
    with pytest.raises(DataError) as exc:
        prepare(doubled, request())
    assert "share an (item, timestamp)" in one_line(exc) and "--aggregation" in one_line(exc)
    series = prepare(doubled, request(aggregation="sum"))
    row = series.frame[(series.frame.unique_id == "item0") & (series.frame.ds == table.ds[5])]
    assert row["y"].item() == pytest.approx(2 * table.y[5])


def test_hourly_rows_aggregate_into_days():
    ds = pd.date_range("2024-01-01", periods=24 * 40, freq="h")
    hourly = pd.DataFrame({"ds": ds, "y": 1.0})
    series = prepare(hourly, request(item_id=None, aggregation="sum"))
    assert len(series.frame) == 40 and (series.frame["y"] == 24).all()


def test_horizon_longer_than_a_quarter_is_refused(table):
    with pytest.raises(DataError) as exc:
        prepare(table, request(horizon=18))
    assert "quarter of the shortest series" in one_line(exc) and "at most 17" in one_line(exc)


def test_too_few_points_are_refused(table):
    short = pd.concat([table, pd.DataFrame({"id": "tiny", "ds": table.ds[:5], "y": 1.0})])
    with pytest.raises(DataError) as exc:
        prepare(short, request(horizon=1, filling={"backfill": "none"}))
    assert "'tiny' has 5 points" in one_line(exc)


@pytest.mark.parametrize("field,col", [("target", "sales"), ("timestamp", "when"),
                                       ("item_id", "store")])
def test_unknown_columns_are_refused(table, field, col):
    with pytest.raises(DataError) as exc:
        prepare(table, request(**{field: col}))
    assert f"{col!r} is not in the table" in one_line(exc)


def test_a_non_numeric_target_is_refused(table):
    table["y"] = table["y"].astype(object)
    table.loc[4, "y"] = "n/a"
    with pytest.raises(DataError) as exc:
        prepare(table, request())
    assert "not numeric: row 5 holds 'n/a'" in one_line(exc)


def test_gaps_are_filled_by_the_chosen_method(table):
    gappy = table.drop(index=[10, 11])
    assert prepare(gappy, request()).frame["y"].eq(0).sum() == 2  # middlefill zero (default)
    filled = prepare(gappy, request(filling={"middlefill": "median"})).frame
    item0 = table[table.id == "item0"]["y"].drop(index=[10, 11])
    assert filled.loc[10, "y"] == pytest.approx(np.median(item0))
    with pytest.raises(DataError, match="middlefill is none"):
        prepare(gappy, request(filling={"middlefill": "none"}))


def test_series_ending_early_are_backfilled_to_the_latest_end(table):
    early = table.drop(index=table.index[(table.id == "item1")][-3:])
    frame = prepare(early, request()).frame
    assert frame.groupby("unique_id").size().tolist() == [70, 70]
    assert prepare(early, request(filling={"backfill": "none"})).lengths["item1"] == 67


def test_weekly_series_may_start_on_different_weekdays():
    a = pd.DataFrame({"id": "a", "ds": pd.date_range("2024-01-05", periods=40, freq="7D"), "y": 1.0})
    b = pd.DataFrame({"id": "b", "ds": pd.date_range("2024-01-03", periods=40, freq="7D"), "y": 2.0})
    series = prepare(pd.concat([a, b]), request(frequency="1W", filling={"backfill": "none"}))
    assert series.lengths.tolist() == [40, 40]
    shifted = pd.concat([a, b]).reset_index(drop=True)
    shifted.loc[3, "ds"] += pd.Timedelta(days=1)
    with pytest.raises(DataError, match="does not fall on the 1W grid"):
        prepare(shifted, request(frequency="1W"))


def test_empty_target_values_are_missing_periods(table):
    table.loc[[20, 21], "y"] = np.nan
    frame = prepare(table, request(filling={"middlefill": "value", "value": -1})).frame
    assert frame.loc[[20, 21], "y"].tolist() == [-1.0, -1.0] and len(frame) == 140
