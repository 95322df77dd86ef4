from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.artifacts import Model, Predictor, load, save, verify
from tabpilot.artifacts.package import MANIFEST, METADATA, PREDICTOR
from tabpilot.data.schema import infer_schema
from tabpilot.errors import DataError, ModelIntegrityError, NotFoundError
from tabpilot.features import build_encoder
from tabpilot.models import FitData, get_family
from tabpilot.tasks import ProblemType

N = 200
CLASSES = ["churn", "stay"]


def _table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "tenure": rng.integers(1, 72, N).astype(float),
        "plan": rng.choice(["basic", "plus", "pro"], N),
        "signup": [(pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(d))).strftime("%Y-%m-%d")
                   for d in rng.integers(0, 900, N)],
    })
    risk = (df["tenure"] < 20).to_numpy() | df["plan"].eq("basic").to_numpy()
    df["label"] = np.where(risk, "churn", "stay")
    return df


def _predictor(ptype: ProblemType = ProblemType.BINARY) -> Predictor:
    df = _table()
    X = df.drop(columns="label")
    schema = infer_schema(X)
    family = get_family("lightgbm")
    encoder = build_encoder(schema, family.style).fit(X)
    if ptype is ProblemType.REGRESSION:
        y, classes, n_classes = df["tenure"].to_numpy() * 2.0, None, 0
    else:
        y, classes, n_classes = df["label"].map(CLASSES.index).to_numpy(), CLASSES, 2
    params = dict(family.portfolio(ptype)[0], n_estimators=60, min_child_samples=5)
    data = FitData(X=encoder.transform(X), y=y, problem_type=ptype, n_classes=n_classes,
                   categorical_indices=encoder.categorical_indices_)
    estimator = family.fit(params, data)
    return Predictor(encoder, family.name, [estimator], ptype, schema.features, classes,
                     threshold=0.5 if classes else None)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return _predictor()


@pytest.fixture
def saved(tmp_path: Path, predictor: Predictor) -> Path:
    return save(predictor, {"candidate": "c-1", "algorithm": "LightGBM",
                            "objective": np.float64(0.9)}, tmp_path / "model")


def test_save_writes_the_files_and_manifest(saved: Path) -> None:
    assert sorted(p.name for p in saved.iterdir()) == sorted([MANIFEST, METADATA, PREDICTOR])
    manifest = json.loads((saved / MANIFEST).read_text())
    assert set(manifest["files"]) == {METADATA, PREDICTOR}
    for name, entry in manifest["files"].items():
        assert len(entry["sha256"]) == 64
        assert entry["bytes"] == (saved / name).stat().st_size
    assert not [p for p in saved.parent.iterdir() if p.name.startswith(".tmp-model-")]


def test_load_round_trip(saved: Path, predictor: Predictor) -> None:
    model = load(saved)
    assert isinstance(model, Model)
    assert model.path == saved
    assert model.metadata["candidate"] == "c-1"
    assert model.metadata["objective"] == 0.9
    assert "tabpilot_version" in model.metadata
    assert model.problem_type is ProblemType.BINARY
    assert model.classes == CLASSES
    assert model.features == ["tenure", "plan", "signup"]
    rows = _table(seed=1).head(50)
    np.testing.assert_array_equal(model.predict(rows), predictor.predict(rows))


def test_saving_again_replaces_the_model(saved: Path, predictor: Predictor) -> None:
    save(predictor, {"candidate": "c-2"}, saved)
    assert load(saved).metadata["candidate"] == "c-2"


def test_model_learned_the_rule(saved: Path) -> None:
    rows = _table(seed=2)
    accuracy = (load(saved).predict(rows) == rows["label"].to_numpy()).mean()
    assert accuracy > 0.9


def test_modified_predictor_fails_verification(saved: Path) -> None:
    path = saved / PREDICTOR
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=PREDICTOR):
        load(saved)


def test_modified_metadata_fails_verification(saved: Path) -> None:
    path = saved / METADATA
    path.write_text(path.read_text().replace("c-1", "c-9"))
    with pytest.raises(ModelIntegrityError, match=METADATA):
        load(saved)


def test_missing_listed_file_fails_verification(saved: Path) -> None:
    (saved / PREDICTOR).unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        load(saved)


def test_missing_manifest_is_not_a_model(saved: Path) -> None:
    (saved / MANIFEST).unlink()
    with pytest.raises(NotFoundError, match=MANIFEST):
        load(saved)


def test_verify_returns_the_manifest(saved: Path) -> None:
    assert set(verify(saved)["files"]) == {METADATA, PREDICTOR}


def test_predict_tolerates_missing_values_and_unseen_categories(saved: Path) -> None:
    model = load(saved)
    rows = pd.DataFrame({"tenure": [None, np.nan, 5.0],
                         "plan": ["enterprise", None, "basic"],
                         "signup": [None, "not a date", "2021-02-03"]})
    with pytest.raises(DataError, match="row 2, column 'signup': 'not a date' is not a date"):
        model.predict(rows)  # an unreadable value is refused unless read as missing on request
    labels = model.predict(rows, on_bad_value="missing")
    assert len(labels) == 3
    assert set(labels) <= set(CLASSES)
    assert labels[2] == "churn"


def test_predict_ignores_extra_columns_and_the_target(saved: Path) -> None:
    model = load(saved)
    rows = _table(seed=3).head(20)
    expected = model.predict(rows[["tenure", "plan", "signup"]])
    shuffled = rows[["label", "signup", "plan", "tenure"]].assign(extra=range(20))
    np.testing.assert_array_equal(model.predict(shuffled), expected)


def test_missing_required_column_names_it(saved: Path) -> None:
    rows = _table().head(5).drop(columns=["plan"])
    with pytest.raises(DataError, match="'plan'") as info:
        load(saved).predict(rows)
    assert "\n" not in str(info.value)


def test_predict_proba_columns_are_the_class_labels(saved: Path) -> None:
    model = load(saved)
    rows = _table(seed=4).head(30)
    rows.index = range(100, 130)
    proba = model.predict_proba(rows)
    assert list(proba.columns) == CLASSES
    assert list(proba.index) == list(rows.index)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    expected = np.where(proba["stay"] >= 0.5, "stay", "churn")
    np.testing.assert_array_equal(model.predict(rows), expected)


def test_dict_row_and_list_of_dicts(saved: Path) -> None:
    model = load(saved)
    row = {"tenure": 3.0, "plan": "basic", "signup": "2020-05-06"}
    assert model.predict(row).tolist() == ["churn"]
    proba = model.predict_proba(row)
    assert proba.shape == (1, 2)
    two = model.predict([row, dict(row, tenure=60.0, plan="pro")])
    assert two.tolist() == ["churn", "stay"]


def test_one_row_agrees_with_the_batch(saved: Path) -> None:
    model = load(saved)
    rows = _table(seed=5).head(80)
    batch = model.predict_proba(rows).to_numpy()
    for i in [0, 41, 79]:
        np.testing.assert_allclose(model.predict_proba(rows.iloc[[i]]).to_numpy()[0], batch[i])


def test_unsupported_input_type(saved: Path) -> None:
    with pytest.raises(DataError, match="str"):
        load(saved).predict("tenure=3")


def test_regression_model(tmp_path: Path) -> None:
    model = load(save(_predictor(ProblemType.REGRESSION), {}, tmp_path / "reg"))
    pred = model.predict(_table(seed=6).head(10))
    assert pred.dtype == np.float64
    assert pred.shape == (10,)
    with pytest.raises(DataError, match="regression"):
        model.predict_proba(_table().head(3))
