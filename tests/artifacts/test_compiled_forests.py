"""The compiled path of scikit-learn forests (RandomForest, ExtraTrees) and of text tables:
equal to the Python path on every problem type, with missing values, unseen and absent
classes and categories; packaged under the manifest; an ensemble's members with equal
encoders encode a request once; and the Python path when compiling is not possible."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from compiledlib import assert_same, python_twin

from tabpilot.artifacts import Predictor, compiled, load, save
from tabpilot.artifacts.compiled import rows as rows_module
from tabpilot.artifacts.compiled.forest import Forest
from tabpilot.artifacts.compiled.rows import RowEncoder
from tabpilot.artifacts.package import MANIFEST
from tabpilot.data.schema import ColumnKind, infer_schema
from tabpilot.features import build_encoder
from tabpilot.models import FitData, get_family
from tabpilot.tasks import ProblemType

N = 300
CITIES = [f"city-{i:02d}" for i in range(40)]
WORDS = ["red", "green", "blue", "quick", "slow", "fox", "dog", "cat", "big", "small"]
CLASSES = {ProblemType.BINARY: ["no", "yes"], ProblemType.MULTICLASS: ["a", "b", "c", "d"]}
TYPES = [ProblemType.BINARY, ProblemType.MULTICLASS, ProblemType.REGRESSION]


def _table(n: int = N, seed: int = 0, text: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "x1": rng.normal(size=n),
        "x2": rng.integers(0, 30, n).astype(float),
        "city": rng.choice(CITIES, n),
        "size": rng.choice(["S", "M", "L"], n),
    })
    df.loc[rng.random(n) < 0.15, "x1"] = np.nan
    df.loc[rng.random(n) < 0.1, "city"] = None
    if text:  # varied phrases, so the schema reads it as text
        df["note"] = [" ".join(rng.choice(WORDS, 6)) + f" {i}" for i in range(n)]
    return df


def _target(df: pd.DataFrame, ptype: ProblemType) -> np.ndarray:
    city = df["city"].fillna("city-00").str[-2:].astype(int).to_numpy()
    score = df["x1"].fillna(0).to_numpy() + (city % 5) / 2 + df["size"].eq("L") - df["x2"] / 30
    if "note" in df:
        score = score + df["note"].str.contains("fox").to_numpy()
    if ptype is ProblemType.REGRESSION:
        return 50 * score + 1000.0
    if ptype is ProblemType.BINARY:
        return (score > np.median(score)).astype(int)
    return np.digitize(score, np.quantile(score, [0.25, 0.5, 0.75]))


def _predictor(name: str, ptype: ProblemType, folds: int = 1, text: bool = False,
               drop_class: int | None = None) -> Predictor:
    """A candidate as a trial fits it; `drop_class`: the first fold never sees that class."""
    df = _table(text=text)
    schema = infer_schema(df)
    assert (schema.columns(ColumnKind.TEXT) == ["note"]) == text
    family = get_family(name)
    encoder = build_encoder(schema, family.style).fit(df)
    y = _target(df, ptype)
    classes = CLASSES.get(ptype)
    params = dict(family.portfolio(ptype)[0], n_estimators=20)
    encoded = encoder.transform(df)
    rng = np.random.default_rng(1)
    estimators = []
    for k in range(folds):
        rows = np.sort(rng.choice(N, int(N * 0.8), replace=False)) if folds > 1 else np.arange(N)
        if k == 0 and drop_class is not None:
            rows = rows[y[rows] != drop_class]
        data = FitData(encoded[rows], y[rows], ptype, len(classes or []),
                       encoder.categorical_indices_, seed=k)
        estimators.append(family.fit(params, data))
    return Predictor(encoder, name, estimators, ptype, schema.features, classes,
                     threshold=0.45 if ptype is ProblemType.BINARY else None)


def _requests(text: bool = False) -> pd.DataFrame:
    """New rows, a row of missing values, unseen categories and text, values as CSV text."""
    df = _table(80, seed=9, text=text)
    edge = pd.DataFrame([
        {c: None for c in df.columns},
        {"x1": "0.25", "x2": " 7 ", "city": "nowhere", "size": "XL", "note": "unheard words"},
        {"x1": 1e30, "x2": -3.0, "city": " city-03 ", "size": "S", "note": "fox fox"},
    ])
    return pd.concat([df.astype(object), edge[list(df.columns)]], ignore_index=True)


def _save(predictor, directory: Path, text: bool = False) -> Path:
    out = save(predictor, {"candidate": "c"}, directory, sample=_table(150, 3, text))
    record = json.loads((out / "metadata.json").read_text())["compiled"]
    assert record["status"] == "compiled", record
    assert record["max_difference"] <= compiled.TOLERANCE
    return out


@pytest.mark.parametrize("folds", [1, 3], ids=["single", "bag"])
@pytest.mark.parametrize("ptype", TYPES, ids=lambda t: t.value)
@pytest.mark.parametrize("name", ["random_forest", "extra_trees"])
def test_a_compiled_forest_equals_the_python_path(tmp_path: Path, monkeypatch, name: str,
                                                  ptype: ProblemType, folds: int) -> None:
    directory = _save(_predictor(name, ptype, folds), tmp_path / "model")
    files = json.loads((directory / MANIFEST).read_text())["files"]
    assert {compiled.FOREST_FILE, compiled.KERNEL_FILE} <= set(files)
    model, twin = load(directory), python_twin(directory, monkeypatch)
    assert model.compiled and not twin.compiled
    forest = model.predictor.compiled_.forest
    assert forest.float32_inputs and len(forest.members) == folds
    assert forest.leaf_dim == (4 if ptype is ProblemType.MULTICLASS else 1)
    rows = _requests()
    assert_same(model, twin, rows)  # a batch (the encoder's vectorised path)
    assert_same(model, twin, rows.iloc[2:7])  # fewer rows than the kernel's lanes
    for i in [0, 3, len(rows) - 3, len(rows) - 2, len(rows) - 1]:  # one row at a time
        assert_same(model, twin, rows.iloc[[i]])


@pytest.mark.parametrize("ptype", [ProblemType.BINARY, ProblemType.MULTICLASS],
                         ids=lambda t: t.value)
def test_a_fold_that_lacked_a_class_is_widened_as_in_python(tmp_path: Path, monkeypatch,
                                                            ptype: ProblemType) -> None:
    predictor = _predictor("random_forest", ptype, folds=2, drop_class=1)
    assert len(predictor.estimators[0].classes_) == len(CLASSES[ptype]) - 1
    directory = _save(predictor, tmp_path / "model")
    assert_same(load(directory), python_twin(directory, monkeypatch), _requests())


@pytest.mark.parametrize("name", ["random_forest", "lightgbm", "xgboost", "catboost"])
def test_a_table_with_text_compiles_and_equals_the_python_path(tmp_path: Path, monkeypatch,
                                                               name: str) -> None:
    predictor = _predictor(name, ProblemType.BINARY, folds=2, text=True)
    directory = _save(predictor, tmp_path / "model", text=True)
    model, twin = load(directory), python_twin(directory, monkeypatch)
    # XGBoost reads a sparse matrix's zeros as missing; the compiled path must too
    assert model.predictor.compiled_.forest.zeros_missing == (name == "xgboost")
    rows = _requests(text=True)
    assert_same(model, twin, rows)
    for i in [0, 1, len(rows) - 3, len(rows) - 2, len(rows) - 1]:
        assert_same(model, twin, rows.iloc[[i]])


def test_the_row_encoder_gives_the_ordinal_encoders_matrix() -> None:
    predictor = _predictor("extra_trees", ProblemType.REGRESSION, text=True)
    encoder = predictor.encoder
    assert encoder.categorical_encoding == "ordinal" and encoder.scale
    assert len(encoder.missing_cols_)  # x1 has missing values: an indicator column
    rows, fast = _requests(text=True), RowEncoder(encoder)
    assert fast.direct
    for i in range(len(rows)):
        np.testing.assert_array_equal(fast.encode(rows.iloc[[i]]),
                                      encoder.transform(rows.iloc[[i]]).toarray())
    shuffled = rows[list(reversed(rows.columns))].iloc[:10]  # any column order
    np.testing.assert_array_equal(fast.encode(shuffled), encoder.transform(shuffled).toarray())


@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_the_row_encoder_gives_the_onehot_encoders_matrix(name: str) -> None:
    # the linear and MLP families' encoding (one-hot blocks and each label's frequency,
    # standardised numbers with missing indicators): their Python path encodes a few rows
    # with it, so it must be the encoder's own matrix, missing and unseen values included
    predictor = _predictor(name, ProblemType.BINARY)
    encoder = predictor.encoder
    assert encoder.categorical_encoding == "onehot" and encoder.scale and not encoder.text
    rows, fast = _requests(), RowEncoder(encoder)
    assert fast.direct
    for i in range(len(rows)):
        np.testing.assert_array_equal(fast.encode(rows.iloc[[i]]),
                                      encoder.transform(rows.iloc[[i]]))
    shuffled = rows[list(reversed(rows.columns))].iloc[:10]
    np.testing.assert_array_equal(fast.encode(shuffled), encoder.transform(shuffled))
    # the Python path takes it for a few rows, the encoder for a batch: the same answers
    calls: list[int] = []
    transform = encoder.transform
    encoder.transform = lambda X: calls.append(len(X)) or transform(X)
    one_by_one = np.vstack([predictor.raw_predict(rows.iloc[[i]]) for i in range(len(rows))])
    assert calls == []  # no row went through the encoder's numpy set-up
    # (a batch's matrix products may round differently from one row's)
    np.testing.assert_allclose(one_by_one, predictor.raw_predict(rows), rtol=1e-9, atol=1e-12)
    assert calls == [len(rows)]


def test_an_ensemble_encodes_a_request_once_per_encoder(tmp_path: Path, monkeypatch) -> None:
    from tabpilot.ensemble.predictor import EnsemblePredictor

    ptype = ProblemType.MULTICLASS
    members = []
    names = ["lightgbm", "xgboost", "random_forest", "extra_trees", "linear", "linear"]
    for i, name in enumerate(names):
        predictor = _predictor(name, ptype, text=True)
        directory = save(predictor, {"candidate": name}, tmp_path / f"m{i}" / "model",
                         sample=_table(100, 5, text=True))
        members.append(load(directory).predictor)
    ensemble = EnsemblePredictor(members, [0.3, 0.2, 0.2, 0.2, 0.05, 0.05], list("abcdef"),
                                 ptype, CLASSES[ptype])
    directory = save(ensemble, {"candidate": "ensemble"}, tmp_path / "ensemble" / "model")
    model, twin = load(directory), python_twin(directory, monkeypatch)
    parts = [m.__dict__.get("compiled_") for m in model.predictor.members]
    assert [p is not None for p in parts] == [True, True, True, True, False, False]
    assert parts[0].rows is parts[1].rows  # both "native": one row encoder
    assert parts[2].rows is parts[3].rows and parts[2].rows is not parts[0].rows
    linear = model.predictor.members[4:]
    assert linear[0].encoder is linear[1].encoder  # equal "onehot" encoders: one object
    calls = []
    for rows in {id(p.rows): p.rows for p in parts if p is not None}.values():
        encode = rows._encode
        monkeypatch.setattr(rows, "_encode", lambda X, f=encode: calls.append(1) or f(X))
    transform = linear[0].encoder.transform
    monkeypatch.setattr(linear[0].encoder, "transform",
                        lambda X: calls.append(1) or transform(X))
    text = parts[0].rows._texts[0]  # both row encoders' equal "note" vectorizers: one
    assert parts[2].rows._texts[0] is text
    vectorized = []
    vectorize = rows_module.tfidf_transform
    monkeypatch.setattr(rows_module, "tfidf_transform",
                        lambda vec, v: vectorized.append(vec) or vectorize(vec, v))
    request = _requests(text=True)
    assert_same(model, twin, request.iloc[[4]])
    assert len(calls) == 2 * 3  # predict_proba and predict: each encoder once per request
    # and the shared text vectorizer once per request
    assert vectorized == [text.vectorizer, text.vectorizer]
    assert_same(model, twin, request)


def test_a_forest_over_the_node_limit_stays_on_the_python_path(tmp_path: Path,
                                                               monkeypatch) -> None:
    monkeypatch.setattr(compiled, "MAX_NODES", 500)
    predictor = _predictor("random_forest", ProblemType.MULTICLASS)
    directory = save(predictor, {"candidate": "c"}, tmp_path / "model", sample=_table(50))
    record = json.loads((directory / "metadata.json").read_text())["compiled"]
    assert record["status"] == "python" and "nodes" in record["reason"]
    assert not (directory / compiled.FOREST_FILE).exists()
    model = load(directory)
    assert not model.compiled
    expected = predictor.python_raw(_requests().iloc[:5])
    np.testing.assert_allclose(model.predict_proba(_requests().iloc[:5]).to_numpy(), expected)


def test_a_forest_file_of_the_previous_format_loads(tmp_path: Path) -> None:
    """Files written before vector leaves lack leaf_dim and zeros_missing: one value, no."""
    predictor = _predictor("lightgbm", ProblemType.BINARY)
    forest = compiled.build_forest(predictor)
    forest.save(tmp_path / "f.npz")
    with np.load(tmp_path / "f.npz") as data:
        arrays = dict(data)
    meta = json.loads(arrays["meta"].tobytes().decode())
    del meta["leaf_dim"], meta["zeros_missing"]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    old = Forest.load(tmp_path / "old.npz")
    assert old.leaf_dim == 1 and not old.zeros_missing


def test_an_ensemble_compiles_the_members_whose_trial_could_not(tmp_path: Path,
                                                                monkeypatch) -> None:
    from tabpilot.ensemble.predictor import EnsemblePredictor

    ptype = ProblemType.BINARY
    members = []
    for i, name in enumerate(["random_forest", "lightgbm", "linear"]):
        # packaged past its deadline, as a trial that used all its time
        directory = save(_predictor(name, ptype), {"candidate": name},
                         tmp_path / f"m{i}" / "model", sample=_table(50), deadline=0.0)
        members.append(load(directory).predictor)
        assert not load(directory).compiled
    ensemble = EnsemblePredictor(members, [0.5, 0.3, 0.2], list("abc"), ptype, CLASSES[ptype])
    directory = save(ensemble, {"candidate": "ensemble"}, tmp_path / "ensemble" / "model",
                     sample=_table(100, 5))
    record = json.loads((directory / "metadata.json").read_text())["compiled"]
    assert record["members"] == [0, 1]
    assert set(record["compiled_here"]) == {"0", "1"}  # the linear member is not tried
    model, twin = load(directory), python_twin(directory, monkeypatch)
    assert [m.__dict__.get("compiled_") is not None for m in model.predictor.members] == \
        [True, True, False]
    assert_same(model, twin, _requests())
    assert_same(model, twin, _requests().iloc[[1]])
    late = save(ensemble, {"candidate": "ensemble"}, tmp_path / "late" / "model",
                sample=_table(100, 5), deadline=0.0)
    record = json.loads((late / "metadata.json").read_text())["compiled"]
    assert record["status"] == "python" and not load(late).compiled
    assert all("time" in r["reason"] for r in record["compiled_here"].values())


def test_an_ensemble_holding_a_stack_serves_the_stack_s_members_compiled(
        tmp_path: Path, monkeypatch) -> None:
    """The members of a stack inside an ensemble keep their compiled paths (member files
    number the single candidates depth first), equal to the Python path."""
    from tabpilot.ensemble.predictor import EnsemblePredictor, StackPredictor
    from tabpilot.ensemble.stacking import make_stacker, stack_features

    ptype = ProblemType.BINARY
    trees = [_predictor(name, ptype) for name in ["lightgbm", "random_forest"]]
    df = _table()
    stacker = make_stacker(ptype).fit(
        stack_features([p.raw_predict(df) for p in trees], ptype), _target(df, ptype))
    stack = StackPredictor(trees, ["a", "b"], stacker, ptype, CLASSES[ptype])
    ensemble = EnsemblePredictor([stack, _predictor("xgboost", ptype)], [0.6, 0.4],
                                 ["stack", "c"], ptype, CLASSES[ptype])
    directory = save(ensemble, {"candidate": "ensemble"}, tmp_path / "ensemble" / "model",
                     sample=_table(100, 5))
    record = json.loads((directory / "metadata.json").read_text())["compiled"]
    assert record["status"] == "compiled" and record["members"] == [0, 1, 2], record
    model, twin = load(directory), python_twin(directory, monkeypatch)
    inside = compiled.single_predictors(model.predictor)
    assert [p.family for p in inside] == ["lightgbm", "random_forest", "xgboost"]
    assert all(p.__dict__.get("compiled_") is not None for p in inside)
    assert not any(p.__dict__.get("compiled_") is not None
                   for p in compiled.single_predictors(twin.predictor))
    assert_same(model, twin, _requests())
    assert_same(model, twin, _requests().iloc[[1]])
