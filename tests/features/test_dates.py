"""Dates read the same one at a time (a one-row request: plain Python per value) as in a
batch (pandas' vectorised parser), and give the parts pandas' own accessors give."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tabpilot.artifacts.compiled.rows import RowEncoder
from tabpilot.features.columns import DATE_PARTS, SMALL, date_parts, date_row, parse_dates
from tabpilot.features.encoder import TabularEncoder

ODD = ["2012-05-13", "2012-05-13 14:35:10", "2012-05-13T14:35:10.123456789", "05/13/2012",
       "13/05/2012", "13 May 2012", "May 13, 2012", "May 2012", "2012", "20120513", "1.5", "",
       " ", "abc", None, np.nan, pd.NaT, "NaT", "nan", "2012-05-13T14:35:10+02:00",
       "2012-05-13 14:35:10Z", "1969-12-31 23:59:59", "1900-02-28", "1677-09-22", "2262-04-11",
       "3000-01-01", "0001-01-01", 20120513, 1.0, 0, -5, True, "2012-13-45", "Sunday", "12:30",
       pd.Timestamp("2012-05-13 10:00"), pd.Timestamp("2012-05-13 10:00", tz="Europe/Paris"),
       dt.datetime(2012, 5, 13, 7), dt.date(2012, 5, 13), np.datetime64("2012-05-13T01:02"),
       "  2012-05-13  ", "2012/05/13", "13.05.2012", "1e5", "Jan 1 1970 00:00"]


def _accessor_parts(values: np.ndarray) -> np.ndarray:
    """The parts as pandas' datetime accessors give them (the encoder's former code)."""
    stamps = pd.Series(parse_dates(values))
    a = stamps.dt
    cols = [a.year, a.month, a.day, a.dayofweek, a.dayofyear, a.hour,
            (stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)]
    return np.column_stack([np.asarray(c, dtype=np.float64) for c in cols])


@pytest.mark.parametrize("value", ODD, ids=[repr(v)[:30] for v in ODD])
def test_one_value_reads_as_in_a_batch(value: object) -> None:
    one = np.array([value], dtype=object)
    batch = np.array([value] * (SMALL + 1), dtype=object)
    assert parse_dates(one)[0] == parse_dates(batch)[0] or \
        (np.isnat(parse_dates(one)[0]) and np.isnat(parse_dates(batch)[0]))
    np.testing.assert_array_equal(date_parts(one)[0], date_parts(batch)[0])
    np.testing.assert_array_equal(date_row(value), date_parts(batch)[0])


@pytest.mark.parametrize("form", ["%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d", "%m/%d/%Y %H:%M"])
def test_parts_are_pandas_accessors_across_the_whole_range(form: str) -> None:
    rng = np.random.default_rng(0)
    ns = rng.integers(-9_200_000_000_000_000_000, 9_200_000_000_000_000_000, 3000)
    stamps = pd.to_datetime(ns, unit="ns")
    text = np.array([s.strftime(form) for s in stamps], dtype=object)
    batch = date_parts(text)
    np.testing.assert_array_equal(batch, _accessor_parts(text))
    for i in range(200):  # one at a time: the per-value path
        np.testing.assert_array_equal(date_parts(text[i:i + 1])[0], batch[i])


def test_midnight_near_the_earliest_date_has_its_own_day() -> None:
    """numpy's cast of 1677-09-22T00:00 (ns) to days overflows to 2262; the parts do not."""
    parts = date_parts(np.array(["1677-09-22"] * (SMALL + 1), dtype=object))[0]
    assert parts[:3].tolist() == [1677.0, 9.0, 22.0]
    assert parts[DATE_PARTS.index("hour")] == 0.0


def test_a_batch_with_mixed_utc_offsets_reads_each_in_utc() -> None:
    values = np.array(["2021-03-04T05:00:00+02:00", "2021-03-04T05:00:00-05:00"] * 40,
                      dtype=object)
    hours = date_parts(values)[:2, DATE_PARTS.index("hour")]
    assert hours.tolist() == [3.0, 10.0]
    np.testing.assert_array_equal(date_parts(values[:2]), date_parts(values)[:2])


@pytest.mark.parametrize("encoding", ["codes", "ordinal", "onehot"])
@pytest.mark.parametrize("scale", [False, True])
def test_the_row_encoder_encodes_date_columns_as_the_encoder(encoding: str, scale: bool) -> None:
    rng = np.random.default_rng(1)
    n = 300
    df = pd.DataFrame({
        "x": rng.normal(size=n),
        "when": [(pd.Timestamp("2011-01-01") + pd.Timedelta(hours=int(h))).isoformat()
                 for h in rng.integers(0, 24 * 700, n)],
        "city": rng.choice(["a", "b", "c"], n),
        "day": pd.Series(pd.date_range("2020-01-01", periods=n, freq="13h")).astype(str),
    })
    df.loc[::7, "when"] = None
    df.loc[::11, "x"] = np.nan
    encoder = TabularEncoder(numeric=["x"], categorical=["city"], datetime=["when", "day"],
                             categorical_encoding=encoding, scale=scale).fit(df)
    rows = RowEncoder(encoder)
    assert rows.direct
    requests = pd.concat([df.head(20), pd.DataFrame([
        {"x": None, "when": "not a date", "city": "zz", "day": None},
        {"x": "1.5", "when": "2012-05-13T14:35:10+02:00", "city": " b ", "day": "05/13/2012"},
    ])], ignore_index=True).astype(object)
    for i in range(len(requests)):
        np.testing.assert_array_equal(rows.encode(requests.iloc[[i]]),
                                      encoder.transform(requests.iloc[[i]]))
    np.testing.assert_array_equal(rows.encode(requests), encoder.transform(requests))
