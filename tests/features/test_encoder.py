from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tabpilot.data.schema import ColumnKind, Schema
from tabpilot.features import TabularEncoder, build_encoder
from tabpilot.features.columns import DATE_PARTS

SMALL_BATCH = 64  # up to this many rows the encoder takes its plain-Python path
N = 150  # more than SMALL_BATCH, so a full transform takes the vectorised path
WORDS = ["alpha", "beta", "gamma", "delta", "the", "quick", "brown", "fox", "lazy", "dog"]
ENCODINGS = ["codes", "ordinal", "onehot"]


def _frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "num": rng.normal(size=n),
        "count": rng.integers(0, 50, n),
        "color": rng.choice(["red", "green", "blue", "black"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "size": rng.choice([1.0, 2.0, 3.0], n),
        "when": [(pd.Timestamp("2021-01-01") + pd.Timedelta(hours=int(h))).isoformat()
                 for h in rng.integers(0, 24 * 700, n)],
        "note": [" ".join(rng.choice(WORDS, 6)) for _ in range(n)],
    })
    df.loc[::7, "num"] = np.nan
    df.loc[::9, "color"] = None
    return df


def _encoder(encoding: str, scale: bool = False, text: bool = False) -> TabularEncoder:
    return TabularEncoder(numeric=["num", "count"], categorical=["color", "size"],
                          datetime=["when"], text=["note"] if text else [],
                          categorical_encoding=encoding, scale=scale)


def _dense(m) -> np.ndarray:
    return m.toarray() if sp.issparse(m) else np.asarray(m)


def _new_rows() -> pd.DataFrame:
    """Unseen categories, missing and malformed values in every column."""
    return pd.DataFrame({
        "num": [None, 1.0, np.nan],
        "count": [np.nan, 3, None],
        "color": ["purple", None, "red"],
        "size": [7.0, np.nan, 2.0],
        "when": [None, "not a date", "2022-03-04T05:00:00"],
        "note": [None, "zebra unicorn", "the quick fox"],
    })


def test_fit_leaves_the_learned_state() -> None:
    enc = _encoder("codes").fit(_frame())
    assert enc.categories_["color"][0] == "red"  # most frequent first
    assert set(enc.categories_["color"]) == {"red", "green", "blue", "black"}
    assert enc.categories_["size"] and set(enc.categories_["size"]) == {"1", "2", "3"}


def test_codes_encoding() -> None:
    df = _frame()
    enc = _encoder("codes").fit(df)
    out = enc.transform(df)
    names = list(enc.get_feature_names_out())
    col = out[:, names.index("color")]
    assert np.isnan(col[df["color"].isna().to_numpy()]).all()
    known = df["color"].notna().to_numpy()
    expected = [enc.categories_["color"].index(v) for v in df.loc[known, "color"]]
    np.testing.assert_array_equal(col[known], expected)
    np.testing.assert_array_equal(out[:, names.index("num")], df["num"].to_numpy())


def test_ordinal_encoding_uses_minus_one_for_missing() -> None:
    df = _frame()
    enc = _encoder("ordinal").fit(df)
    out = enc.transform(df)
    col = out[:, list(enc.get_feature_names_out()).index("color")]
    assert (col[df["color"].isna().to_numpy()] == -1).all()
    assert (col[df["color"].notna().to_numpy()] >= 0).all()
    assert not np.isnan(col).any()


def test_onehot_encoding() -> None:
    df = _frame()
    enc = _encoder("onehot").fit(df)
    out = enc.transform(df)
    names = list(enc.get_feature_names_out())
    onehot = out[:, [names.index(f"color={c}") for c in enc.categories_["color"]]]
    known = df["color"].notna().to_numpy()
    np.testing.assert_array_equal(onehot[known].sum(axis=1), 1.0)
    np.testing.assert_array_equal(onehot[~known].sum(axis=1), 0.0)
    red = df["color"].eq("red").to_numpy()
    np.testing.assert_array_equal(out[:, names.index("color=red")], red.astype(float))
    freq = out[:, names.index("color.frequency")]
    assert freq[red][0] == pytest.approx(red.mean())


def test_onehot_caps_the_number_of_categories() -> None:
    df = pd.DataFrame({"c": [f"v{i % 40}" for i in range(200)]})
    enc = TabularEncoder(categorical=["c"], categorical_encoding="onehot",
                         onehot_max_categories=5).fit(df)
    assert len(enc.categories_["c"]) == 5
    assert enc.transform(df).shape == (200, 6)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("scale", [False, True])
def test_unseen_and_missing_values_do_not_raise(encoding: str, scale: bool) -> None:
    enc = _encoder(encoding, scale=scale, text=True).fit(_frame())
    out = _dense(enc.transform(_new_rows()))
    assert out.shape == (3, enc.n_features_out_)
    if scale and encoding != "codes":  # codes keep NaN for missing categories by design
        assert np.isfinite(out).all()


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_unseen_categories_encode_like_missing(encoding: str) -> None:
    enc = _encoder(encoding).fit(_frame())
    rows = pd.DataFrame({"num": [0.0, 0.0], "count": [1, 1], "color": ["purple", None],
                         "size": [9.0, None], "when": ["2021-05-05"] * 2})
    out = enc.transform(rows)
    np.testing.assert_array_equal(out[0], out[1])


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("scale", [False, True])
def test_one_row_transform_equals_the_batch_row(encoding: str, scale: bool) -> None:
    df = _frame()
    enc = _encoder(encoding, scale=scale, text=True).fit(df)
    batch = pd.concat([df, _new_rows()], ignore_index=True)
    assert len(batch) > SMALL_BATCH
    full = _dense(enc.transform(batch))
    for i in [0, 7, 9, 63, 64, len(df), len(df) + 1, len(df) + 2]:
        one = _dense(enc.transform(batch.iloc[[i]]))
        np.testing.assert_array_equal(one[0], full[i], err_msg=f"row {i}")


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_small_and_large_batches_agree(encoding: str) -> None:
    df = _frame()
    enc = _encoder(encoding).fit(df)
    full = enc.transform(df)
    np.testing.assert_array_equal(enc.transform(df.iloc[:SMALL_BATCH]), full[:SMALL_BATCH])


def test_text_columns_give_a_sparse_matrix() -> None:
    df = _frame()
    enc = _encoder("onehot", scale=True, text=True).fit(df)
    out = enc.transform(df)
    assert sp.issparse(out)
    assert out.shape == (N, enc.n_features_out_)
    text_cols = [i for i, n in enumerate(enc.get_feature_names_out()) if n.startswith("note:")]
    assert text_cols
    assert out[:, text_cols].nnz > 0


def test_text_column_with_too_few_documents_still_fits() -> None:
    df = pd.DataFrame({"note": ["a lone sentence here", None]})
    enc = TabularEncoder(text=["note"]).fit(df)
    assert enc.transform(df).shape[0] == 2


def test_no_text_gives_a_dense_array() -> None:
    df = _frame()
    out = _encoder("codes").fit(df).transform(df)
    assert isinstance(out, np.ndarray)


def test_datetime_parts() -> None:
    df = pd.DataFrame({"when": ["2021-03-04T05:06:07", "1970-01-02", None],
                       "x": [1.0, 2.0, 3.0]})
    enc = TabularEncoder(numeric=["x"], datetime=["when"]).fit(df)
    out = enc.transform(df)
    names = list(enc.get_feature_names_out())
    assert names[1:] == [f"when.{p}" for p in DATE_PARTS]
    parts = dict(zip(DATE_PARTS, out[0, 1:], strict=True))
    ts = pd.Timestamp("2021-03-04T05:06:07")
    assert parts["year"] == 2021
    assert parts["month"] == 3
    assert parts["day"] == 4
    assert parts["dayofweek"] == ts.dayofweek
    assert parts["dayofyear"] == ts.dayofyear
    assert parts["hour"] == 5
    assert out[1, 1 + DATE_PARTS.index("epoch_days")] == pytest.approx(1.0)
    assert np.isnan(out[2, 1:]).all()


def test_datetime64_column() -> None:
    df = pd.DataFrame({"when": pd.date_range("2020-02-29", periods=3, freq="D", tz="UTC")})
    out = TabularEncoder(datetime=["when"]).fit(df).transform(df)
    assert out[:, DATE_PARTS.index("month")].tolist() == [2.0, 3.0, 3.0]


def test_scaling_standardises_and_adds_missing_indicators() -> None:
    df = _frame()
    enc = TabularEncoder(numeric=["num", "count"], scale=True).fit(df)
    out = enc.transform(df)
    names = list(enc.get_feature_names_out())
    assert names == ["num", "count", "num.missing"]
    np.testing.assert_allclose(out[:, :2].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out[:, :2].std(axis=0), 1.0)
    np.testing.assert_array_equal(out[:, 2], df["num"].isna().to_numpy(dtype=float))


def test_numbers_stored_as_strings_are_parsed() -> None:
    df = pd.DataFrame({"v": ["1.5", " 2 ", " ", None]})
    out = TabularEncoder(numeric=["v"]).fit(df).transform(df)
    np.testing.assert_array_equal(out[:, 0], [1.5, 2.0, np.nan, np.nan])


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_pickle_round_trip(encoding: str) -> None:
    df = _frame()
    enc = _encoder(encoding, scale=True, text=True).fit(df)
    again = pickle.loads(pickle.dumps(enc))
    batch = pd.concat([df, _new_rows()], ignore_index=True)
    np.testing.assert_array_equal(_dense(again.transform(batch)), _dense(enc.transform(batch)))
    np.testing.assert_array_equal(_dense(again.transform(batch.iloc[[1]])),
                                  _dense(enc.transform(batch.iloc[[1]])))


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("scale", [False, True])
def test_feature_names_and_source_columns_match_the_output(encoding: str, scale: bool) -> None:
    df = _frame()
    enc = _encoder(encoding, scale=scale, text=True).fit(df)
    n_out = enc.transform(df).shape[1]
    assert len(enc.get_feature_names_out()) == n_out == enc.n_features_out_
    assert len(enc.source_columns()) == n_out
    assert set(enc.source_columns()) == {"num", "count", "color", "size", "when", "note"}


@pytest.mark.parametrize("encoding", ["codes", "ordinal"])
def test_categorical_indices_point_at_the_category_columns(encoding: str) -> None:
    enc = _encoder(encoding).fit(_frame())
    names = enc.get_feature_names_out()
    assert [names[i] for i in enc.categorical_indices_] == ["color", "size"]


def test_categorical_indices_with_scaling_and_missing_numbers() -> None:
    enc = _encoder("ordinal", scale=True).fit(_frame())
    names = enc.get_feature_names_out()
    assert [names[i] for i in enc.categorical_indices_] == ["color", "size"]


def test_onehot_has_no_categorical_indices() -> None:
    assert _encoder("onehot").fit(_frame()).categorical_indices_ == []


@pytest.mark.parametrize("style, encoding, scale", [
    ("native", "codes", False), ("ordinal", "ordinal", True), ("onehot", "onehot", True),
])
def test_build_encoder_styles(style: str, encoding: str, scale: bool) -> None:
    schema = Schema({"num": ColumnKind.NUMERIC, "color": ColumnKind.CATEGORICAL,
                     "when": ColumnKind.DATETIME, "note": ColumnKind.TEXT,
                     "row_id": ColumnKind.ID})
    enc = build_encoder(schema, style)
    assert enc.categorical_encoding == encoding
    assert enc.scale is scale
    assert list(enc.numeric) == ["num"]
    assert list(enc.categorical) == ["color"]
    assert list(enc.datetime) == ["when"]
    assert list(enc.text) == ["note"]
    out = enc.fit(_frame()).transform(_frame())
    assert out.shape == (N, enc.n_features_out_)


M = SMALL_BATCH + 36
DTYPE_CASES = [
    pytest.param("numeric", pd.Series(np.arange(M) % 2 == 0), id="numeric-bool"),
    pytest.param("numeric", pd.Series(pd.array([1, None, 3] * 33 + [4], dtype="Int64")),
                 id="numeric-Int64"),
    pytest.param("numeric", pd.Series(pd.array([1.5, None] * (M // 2), dtype="Float64")),
                 id="numeric-Float64"),
    pytest.param("numeric", pd.Series(["1.5", None, " 2 ", "x"] * (M // 4), dtype="string"),
                 id="numeric-string-dtype"),
    pytest.param("numeric", pd.Series(["1.5", None, " 2 ", "x", "inf"] * (M // 5)),
                 id="numeric-object-strings"),
    pytest.param("numeric", pd.Series(np.float32([0.1, 2.2] * (M // 2))), id="numeric-float32"),
    pytest.param("categorical", pd.Series(np.arange(M) % 3), id="categorical-int"),
    pytest.param("categorical", pd.Series([1.0, 2.0, np.nan] * 33 + [4.0]),
                 id="categorical-float-with-nan"),
    pytest.param("categorical", pd.Series(np.arange(M) % 2 == 0), id="categorical-bool"),
    pytest.param("categorical", pd.Series(pd.Categorical(["a", "b", None, "c"] * (M // 4))),
                 id="categorical-category-dtype"),
    pytest.param("categorical", pd.Series(["x", " y ", None, "z"] * (M // 4), dtype="string"),
                 id="categorical-string-dtype"),
    pytest.param("datetime", pd.Series(pd.date_range("2020-01-01", periods=M, freq="37h")),
                 id="datetime-datetime64"),
    pytest.param("datetime", pd.Series(pd.date_range("2020-01-01", periods=M, freq="37h",
                                                     tz="Asia/Tokyo")),
                 id="datetime-datetime64-tz"),
    pytest.param("datetime", pd.Series(["2020-01-01", None, "2021-06-30 12:00"] * 33 + ["x"]),
                 id="datetime-strings"),
    pytest.param("categorical", pd.Series(np.float32([0.1, 2.2, 3.5] * 33 + [0.1])),
                 id="categorical-float32"),
    pytest.param("categorical", pd.Series(pd.date_range("2020-01-01", periods=M, freq="D")),
                 id="categorical-datetime64"),
    pytest.param("numeric", pd.Series(["1_000", "2.5", "\u0663"] * 33 + ["1"]),
                 id="numeric-underscore-and-unicode-digits"),
]


@pytest.mark.parametrize("kind, values", DTYPE_CASES)
def test_one_row_equals_batch_for_every_column_dtype(kind: str, values: pd.Series) -> None:
    df = pd.DataFrame({"v": values, "other": np.arange(len(values), dtype=float)})
    assert len(df) > SMALL_BATCH
    encoding = "onehot" if kind == "categorical" else "codes"
    columns = {"numeric": ["other"], kind: ["v"]} if kind != "numeric" else {"numeric": ["v"]}
    enc = TabularEncoder(**columns, categorical_encoding=encoding).fit(df)
    full = enc.transform(df)
    for i in range(4):
        np.testing.assert_array_equal(enc.transform(df.iloc[[i]])[0], full[i],
                                      err_msg=f"row {i}")
    np.testing.assert_array_equal(enc.transform(df.iloc[:SMALL_BATCH]), full[:SMALL_BATCH])


def test_missing_column_raises_for_a_small_batch_too() -> None:
    df = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0) * 2})
    enc = TabularEncoder(numeric=["a", "b"]).fit(df)
    with pytest.raises(KeyError):
        enc.transform(df[["a"]])  # the vectorised path raises
    with pytest.raises(KeyError):
        enc.transform(df[["a"]].head(3))


def test_duplicated_unused_column_names_are_ignored_in_a_small_batch() -> None:
    df = pd.DataFrame({"a": np.arange(100.0)})
    enc = TabularEncoder(numeric=["a"]).fit(df)
    extra = pd.DataFrame([[1, 2]] * 100, columns=["x", "x"])
    both = pd.concat([df, extra], axis=1)
    full = enc.transform(both)
    np.testing.assert_array_equal(enc.transform(both.head(3)), full[:3])


@pytest.mark.parametrize("n", [40, 900])  # numpy takes other paths below and above 600 rows
def test_medians_are_those_of_all_numbers_at_once(n: int) -> None:
    """Medians are computed a column at a time (no matrix of every number): the values
    are those of numpy's median over the whole matrix, infinities and NaN ignored."""
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.gamma(2.0, size=n),
                       "c": np.full(n, np.nan), "when": pd.Timestamp("2022-01-01")
                       + pd.to_timedelta(rng.integers(0, 10**5, n), unit="min")})
    df.loc[::7, "a"] = np.nan
    df.loc[::11, "b"] = np.inf
    enc = TabularEncoder(numeric=["a", "b", "c"], datetime=["when"]).fit(df)
    dense = enc._dense_raw({c: df[c].to_numpy() for c in df.columns}, n)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.nan_to_num(np.nanmedian(np.where(np.isfinite(dense), dense, np.nan),
                                              axis=0))
    np.testing.assert_array_equal(enc.medians_, expected)
    assert enc.medians_[2] == 0.0  # a column with no number
