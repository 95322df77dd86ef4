"""The input check counts the same unreadable values and unseen categories in a one-row
request (read value by value) as in a batch (read a column at a time), and names the same
first bad value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabpilot.artifacts.validate import BadValueError, InputSchema, check_input
from tabpilot.features.columns import SMALL

NUMBERS = ["1", " 2.5 ", "1e3", "-inf", "nan", "NA", "", None, np.nan, "x", "1,5", "1_000",
           "\u0663", "0x10", "TRUE", 7, 2.5, True, "  ", "null", "abc1"]
DATES = ["2012-05-13", "05/13/2012", "not a date", "", None, "NA", "2012-13-45", "3000-01-01",
         "2012-05-13T14:35:10+02:00", 20120513, "Sunday", "nan", " ", "2012"]
LABELS = ["a", " a ", "b", "zz", None, "", "NA", 1, 1.0, "1", "A", "n/a"]


def _frame(n: int) -> pd.DataFrame:
    pick = lambda values, k: [values[(i * k) % len(values)] for i in range(n)]  # noqa: E731
    return pd.DataFrame({"x": pick(NUMBERS, 1), "when": pick(DATES, 3), "c": pick(LABELS, 5)},
                        dtype=object)


SCHEMA = InputSchema(["x", "when", "c"], {"x": "numeric", "when": "datetime",
                                          "c": "categorical"}, {"c": frozenset({"a", "b", "1"})})


def test_one_row_at_a_time_finds_what_the_batch_finds() -> None:
    df = _frame(3 * SMALL)
    assert len(df) > SMALL
    _, batch = check_input(df, SCHEMA, "missing")
    rows = [check_input(df.iloc[[i]], SCHEMA, "missing")[1] for i in range(len(df))]
    for kind in ("bad_values", "unseen_categories"):
        total: dict[str, int] = {}
        for report in rows:
            for col, n in getattr(report, kind).items():
                total[col] = total.get(col, 0) + n
        assert total == getattr(batch, kind), kind
    assert batch.bad_values["x"] > 0 and batch.bad_values["when"] > 0
    assert batch.unseen_categories["c"] > 0


@pytest.mark.parametrize("rows", [1, 5, 3 * SMALL])
def test_the_first_bad_value_is_named_alike(rows: int) -> None:
    df = _frame(rows + 10).iloc[10:]  # from a row whose values start with readable ones
    with pytest.raises(BadValueError) as caught:
        check_input(df.reset_index(drop=True), SCHEMA, "error")
    first = str(caught.value).split(":")[0]
    bad = [i for i in range(len(df))
           if check_input(df.iloc[[i]], SCHEMA, "missing")[1].bad_total]
    assert first.startswith(f"row {bad[0] + 1}, column ")
