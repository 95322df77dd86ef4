"""The column store trials read the job's table from, and trials run on it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tabpilot.artifacts import load
from tabpilot.data.prepare import prepare
from tabpilot.data.schema import ColumnKind, Schema, infer_schema
from tabpilot.data.split import make_split
from tabpilot.execution import TrialContext, TrialTask
from tabpilot.execution import trial as trial_module
from tabpilot.execution.base import raw_rows_needed
from tabpilot.execution.columnar import MANIFEST, ColumnStore, write_columns
from tabpilot.execution.trial import encode_narrow, narrow_exact, run_trial
from tabpilot.features import build_encoder
from tabpilot.features.builder import STYLES
from tabpilot.models import FAMILIES, FitData
from tabpilot.tasks import ProblemType

WORDS = "great bad good fine slow fast cheap pricey dull".split()


def mixed_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Every storage the store has: numbers (exact in float32 or not, ints, numbers as
    text, missing), categories (padded text, None, booleans, mixed objects), text, dates
    as text and as datetime64, dates as mixed objects, and an id column."""
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 50.0, n)
    amount[rng.random(n) < 0.1] = np.nan
    mixed_dates = np.empty(n, dtype=object)
    mixed_dates[:] = [pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(d)) if d % 2
                      else f"2021-03-{1 + d % 28:02d}" for d in rng.integers(0, 500, n)]
    return pd.DataFrame({
        "amount": amount,
        "f32": rng.normal(size=n).astype(np.float32).astype(np.float64),
        "count": rng.integers(0, 50, n),
        "flag": rng.random(n) > 0.5,
        "plan": rng.choice(["basic", " plus", "plus", "pro", None], n),
        "numtxt": rng.choice(["1.5", "2", " 3 ", "x", None, "4.25", "7"], n),
        "mixed": rng.choice(np.array([1, True, "a", 2.5, None], dtype=object), n),
        "intcat": rng.choice([1, 2, 3], n).astype(object),
        "review": [" ".join(rng.choice(WORDS, 6)) for _ in range(n)],
        "signup": (pd.Timestamp("2022-01-01")
                   + pd.to_timedelta(rng.integers(0, 700, n), unit="D")).strftime("%Y-%m-%d"),
        "when": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), "min"),
        "visited": mixed_dates,
        "customer_id": np.arange(n),
    })


def mixed_schema(df: pd.DataFrame) -> Schema:
    schema = infer_schema(df)
    schema.kinds.update(mixed=ColumnKind.CATEGORICAL, numtxt=ColumnKind.CATEGORICAL,
                        visited=ColumnKind.DATETIME)
    return schema


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[pd.DataFrame, Schema, ColumnStore]:
    df = mixed_frame(400)
    schema = mixed_schema(df)
    folder = write_columns(df, schema, tmp_path_factory.mktemp("store"))
    return df, schema, ColumnStore(folder)


def test_store_keeps_the_feature_columns_in_compact_storage(stored) -> None:
    df, schema, store = stored
    assert store.names == schema.features and "customer_id" not in store.names
    storage = {c.name: c.storage for c in store.columns}
    assert storage["plan"] == storage["mixed"] == storage["flag"] == "codes"
    assert storage["amount"] == storage["count"] == storage["intcat"] == "numeric"
    assert storage["review"] == storage["signup"] == "strings"
    assert storage["visited"] == "pickle"  # Timestamps and text: kept as they are
    files = {c.name: store.folder / str(c.file) for c in store.columns}
    assert np.load(files["f32"]).dtype == np.float32  # exact in float32: half the bytes
    assert np.load(files["amount"]).dtype == np.float64  # not exact: kept
    assert np.load(files["plan"]).dtype == np.int32
    labels = next(c.labels for c in store.columns if c.name == "plan")
    assert sorted(labels) == ["basic", "plus", "pro"]  # " plus" and "plus": one label
    assert (store.folder / MANIFEST).is_file()


@pytest.mark.parametrize("style", sorted(STYLES))
def test_encoders_see_the_stored_rows_as_the_original_ones(stored, style: str) -> None:
    df, schema, store = stored
    rows = np.random.default_rng(1).permutation(len(df))[:250]
    fit_on = rows[:150]
    original = build_encoder(schema, style).fit(df.iloc[fit_on])
    from_store = build_encoder(schema, style).fit(store.frame(fit_on))
    assert original.categories_ == from_store.categories_
    assert original.frequencies_ == from_store.frequencies_
    a, b = original.transform(df.iloc[rows]), from_store.transform(store.frame(rows))
    a, b = (m.toarray() if hasattr(m, "toarray") else m for m in (a, b))
    np.testing.assert_array_equal(a, b)


def test_frame_of_every_row_and_of_no_row(stored) -> None:
    df, _, store = stored
    whole = store.frame()
    assert len(whole) == len(df) and list(whole.columns) == store.names
    np.testing.assert_array_equal(whole["count"].to_numpy(), df["count"].to_numpy())
    assert len(store.frame(np.array([], dtype=np.int64))) == 0


def _context(df: pd.DataFrame, n_folds: int) -> TrialContext:
    prepared = prepare(df.assign(y=df["amount"].fillna(0) + 20 * (df["plan"] == "pro")), "y")
    split = make_split(prepared.y, False, 0.25, n_folds, 0)
    return TrialContext(prepared.X, prepared.y, split, prepared.schema, prepared.problem_type,
                        prepared.metric, prepared.classes, "columnar", "y", None, 1, 0)


def test_stored_context_keeps_only_the_raw_rows_trials_read(tmp_path: Path) -> None:
    ctx = _context(mixed_frame(300), 1)
    keep = raw_rows_needed(ctx.split)
    small = ctx.stored(tmp_path / "table", keep)
    assert small.X is None and small.table == str(tmp_path / "table")
    assert small.columns == list(ctx.X.columns)
    assert len(small.raw_rows) == len(np.unique(keep))
    check = ctx.split.validation_rows()[:7]
    pd.testing.assert_frame_equal(small.raw(check), ctx.X.iloc[check])
    training_row = ctx.split.folds[0][0][:1]
    with pytest.raises(KeyError):
        small.raw(training_row)


@pytest.mark.parametrize("family,n_folds,train_rows,refit", [
    ("linear", 1, None, False), ("lightgbm", 1, 150, False), ("catboost", 1, None, True),
    ("xgboost", 3, None, False)])
def test_trial_on_the_stored_table_trains_the_same_model(
        tmp_path: Path, family: str, n_folds: int, train_rows: int | None,
        refit: bool) -> None:
    """Holdout (fit and validation rows as views), subsample, refit and k-fold: the model
    a trial trains from the memory-mapped store predicts exactly as the one trained from
    the frame in memory."""
    df = mixed_frame(400, seed=2)
    ctx = _context(df, n_folds)
    stored_ctx = ctx.stored(tmp_path / "table", raw_rows_needed(ctx.split))
    params = dict(FAMILIES[family].portfolio(ctx.problem_type)[0])
    if family != "linear":
        params["n_estimators"] = 30
    refit_of = {"candidate": "parent", "infos": [{}], "objective": 1.0, "metrics": {},
                "threshold": None} if refit else None
    predictions, objectives = [], []
    for name, context in [("memory", ctx), ("stored", stored_ctx)]:
        now = time.time()
        result = run_trial(context, TrialTask(
            name, family, params, str(tmp_path / name / "model"), now + 60, now + 120,
            refit_of=refit_of, train_rows=train_rows))
        assert result.status == "Completed", result.failure_reason
        objectives.append(result.objective)
        predictions.append(np.asarray(load(result.artifact_dir).predict(df.head(60)),
                                      dtype=float))
    assert objectives[0] == objectives[1]
    np.testing.assert_array_equal(predictions[0], predictions[1])


def test_exact_float32_matrices_are_narrowed_and_inexact_ones_kept() -> None:
    exact = np.array([[1.5, np.nan], [2.0, 3.0]])
    narrowed = narrow_exact(exact)
    assert narrowed.dtype == np.float32
    np.testing.assert_array_equal(narrowed, exact)
    inexact = np.array([[0.1, 1.0], [2.0, 3.0]])  # 0.1 is no float32
    assert narrow_exact(inexact) is inexact


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "catboost"])
def test_boosting_on_the_narrowed_matrix_trains_the_same_model(family: str) -> None:
    """Numbers read as float32 and category codes: half the memory, the same model."""
    df = mixed_frame(600, seed=4)[["f32", "count", "plan", "flag", "signup"]]
    schema = infer_schema(df)
    y = df["f32"].to_numpy() * 3 + (df["plan"] == "pro") + df["count"] / 10
    encoded = build_encoder(schema, "native").fit(df).transform(df)
    narrowed = narrow_exact(encoded)
    assert narrowed.dtype == np.float32
    spec = FAMILIES[family]
    params = dict(spec.portfolio(ProblemType.REGRESSION)[0], n_estimators=40)
    cats = build_encoder(schema, "native").fit(df).categorical_indices_
    preds = []
    for X in (encoded, narrowed):
        data = FitData(X=X[:450], y=y[:450], problem_type=ProblemType.REGRESSION, n_classes=0,
                       categorical_indices=cats, X_valid=X[450:], y_valid=y[450:])
        model = spec.fit(params, data)
        preds.append(spec.predict(model, encoded[450:], ProblemType.REGRESSION))
    np.testing.assert_array_equal(preds[0], preds[1])


def test_chunked_encoding_gives_the_whole_transform(monkeypatch) -> None:
    """Encoded in chunks straight into the final matrix: float32 while every value is
    exact, widened when a later chunk is not; text (sparse) encoded whole."""
    monkeypatch.setattr(trial_module, "ENCODE_CHUNK_ROWS", 100)
    df = mixed_frame(450, seed=6)[["f32", "count", "plan", "signup"]]
    encoder = build_encoder(infer_schema(df), "native").fit(df)
    whole = encoder.transform(df)
    exact = encode_narrow(encoder, df)
    assert exact.dtype == np.float32
    np.testing.assert_array_equal(exact, whole)
    df.loc[420, "f32"] = 0.1  # not a float32, in the last chunk
    widened = encode_narrow(encoder, df)
    assert widened.dtype == np.float64
    np.testing.assert_array_equal(widened, encoder.transform(df))
    texts = mixed_frame(300, seed=6)[["review", "count"]]
    text_encoder = build_encoder(infer_schema(texts), "native").fit(texts)
    sparse = encode_narrow(text_encoder, texts)
    assert sp.issparse(sparse)
    np.testing.assert_array_equal(sparse.toarray(), text_encoder.transform(texts).toarray())
