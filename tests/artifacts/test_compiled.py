"""The compiled path: equal to the Python path for every gradient-boosting family, single
models and bags, on every problem type; stored under the manifest; and the Python path
whenever the compiled one is absent, disabled, unloadable, too slow or different."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from compiledlib import assert_same, python_twin

from tabpilot.artifacts import Predictor, compiled, load, save
from tabpilot.artifacts.compiled.native import library
from tabpilot.artifacts.compiled.rows import RowEncoder
from tabpilot.artifacts.manifest import MANIFEST
from tabpilot.artifacts.manifest import sha256 as _sha256
from tabpilot.data.schema import infer_schema
from tabpilot.errors import ModelIntegrityError
from tabpilot.features import build_encoder
from tabpilot.models import FitData, get_family
from tabpilot.reports import explain
from tabpilot.tasks import ProblemType

N = 400
CITIES = [f"city-{i:02d}" for i in range(45)]  # over 32 codes: category sets span words
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
CLASSES = {ProblemType.BINARY: ["no", "yes"], ProblemType.MULTICLASS: ["a", "b", "c"]}


def _table(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "x1": rng.normal(size=n),
        "x2": rng.integers(0, 50, n).astype(float),
        "zeros": np.where(rng.random(n) < 0.6, 0.0, rng.normal(size=n)),
        "city": rng.choice(CITIES, n),
        "size": rng.choice(["S", "M", "L"], n),
    })
    df.loc[rng.random(n) < 0.1, "x1"] = np.nan
    df.loc[rng.random(n) < 0.1, "city"] = None
    return df


def _target(df: pd.DataFrame, ptype: ProblemType) -> np.ndarray:
    city = df["city"].fillna("city-00").str[-2:].astype(int).to_numpy()
    score = df["x1"].fillna(0).to_numpy() + (city % 7) / 3 + df["size"].eq("L") - df["x2"] / 50
    if ptype is ProblemType.REGRESSION:
        return 100 * score + 3000.0
    if ptype is ProblemType.BINARY:
        return (score > np.median(score)).astype(int)
    return np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))


def _predictor(name: str, ptype: ProblemType, folds: int = 1, seed: int = 0,
               **extra: object) -> Predictor:
    df = _table(seed=seed)
    schema = infer_schema(df)
    family = get_family(name)
    encoder = build_encoder(schema, family.style).fit(df)
    y = _target(df, ptype)
    classes = CLASSES.get(ptype)
    params = dict(family.portfolio(ptype)[0], n_estimators=40, **extra)
    encoded = encoder.transform(df)
    rng = np.random.default_rng(seed)
    estimators = []
    for _ in range(folds):  # a bag: models fit on different rows, as k-fold does
        rows = np.sort(rng.choice(N, int(N * 0.8), replace=False)) if folds > 1 else np.arange(N)
        data = FitData(encoded[rows], y[rows], ptype, len(classes or []),
                       encoder.categorical_indices_, seed=seed)
        estimators.append(family.fit(params, data))
    return Predictor(encoder, name, estimators, ptype, schema.features, classes,
                     threshold=0.4 if ptype is ProblemType.BINARY else None)


def _requests() -> pd.DataFrame:
    """New rows, a row of missing values, unseen categories, values as CSV text."""
    df = _table(120, seed=7)
    edge = pd.DataFrame([
        {c: None for c in df.columns},
        {"x1": "0.25", "x2": " 7 ", "zeros": "0", "city": "nowhere", "size": "XL"},
        {"x1": 1e300, "x2": -1e300, "zeros": -0.0, "city": " city-03 ", "size": "S"},
    ])
    return pd.concat([df.astype(object), edge], ignore_index=True)


FAMILIES = ["lightgbm", "xgboost", "catboost"]
TYPES = [ProblemType.BINARY, ProblemType.MULTICLASS, ProblemType.REGRESSION]


@pytest.mark.parametrize("folds", [1, 3], ids=["single", "bag"])
@pytest.mark.parametrize("ptype", TYPES, ids=lambda t: t.value)
@pytest.mark.parametrize("name", FAMILIES)
def test_compiled_predictions_equal_the_python_path(tmp_path: Path, monkeypatch, name: str,
                                                    ptype: ProblemType, folds: int) -> None:
    predictor = _predictor(name, ptype, folds)
    directory = save(predictor, {"candidate": "c"}, tmp_path / "model", sample=_table(200, 3))
    record = json.loads((directory / "metadata.json").read_text())["compiled"]
    assert record["status"] == "compiled", record
    assert record["max_difference"] <= 1e-6
    model, twin = load(directory), python_twin(directory, monkeypatch)
    assert model.compiled and not twin.compiled
    rows = _requests()
    assert_same(model, twin, rows)  # a batch (the encoder's vectorised path)
    for i in [0, 1, 5, len(rows) - 3, len(rows) - 2, len(rows) - 1]:  # one row at a time
        assert_same(model, twin, rows.iloc[[i]])


@pytest.mark.parametrize(("name", "ptype"), [
    ("lightgbm", ProblemType.MULTICLASS), ("xgboost", ProblemType.REGRESSION),
    ("random_forest", ProblemType.MULTICLASS), ("catboost", ProblemType.BINARY)])
def test_one_row_at_a_time_gives_the_batch_s_sums_exactly(tmp_path: Path, name: str,
                                                           ptype: ProblemType) -> None:
    """A batch walks each tree with 16 rows at once; a row alone walks 16 trees at once.
    Both add a row's leaves in tree order (XGBoost's in float32), so they agree exactly."""
    directory = save(_predictor(name, ptype, 3), {"candidate": "c"}, tmp_path / "model",
                     sample=_table(200, 3))
    path = load(directory).predictor.compiled_
    encoded = path.rows.encode(_requests())
    assert len(encoded) > 16 and encoded.shape[0] % 16  # lanes, then rows left over
    batch = path.kernel.raw(encoded)
    alone = np.vstack([path.kernel.raw(encoded[[i]]) for i in range(len(encoded))])
    np.testing.assert_array_equal(alone, batch)
    few = path.kernel.raw(encoded[3:9])  # fewer rows than the lanes: each walks alone
    np.testing.assert_array_equal(few, batch[3:9])


TWEEDIE = {"lightgbm": "tweedie", "xgboost": "reg:tweedie"}


@pytest.mark.parametrize("folds", [1, 3], ids=["single", "bag"])
@pytest.mark.parametrize("name", list(TWEEDIE))
def test_a_tweedie_model_compiles_with_its_log_link(tmp_path: Path, monkeypatch, name: str,
                                                    folds: int) -> None:
    predictor = _predictor(name, ProblemType.REGRESSION, folds, objective=TWEEDIE[name])
    # its TreeSHAP contributions add up to the log of the value, and say so
    assert explain.units(predictor, "tree_shap").startswith("the log of the predicted value")
    assert explain.units(predictor, "baseline_occlusion") == "the target's units"
    assert explain.units(_predictor(name, ProblemType.REGRESSION), "tree_shap") == \
        "the target's units"
    directory = save(predictor, {"candidate": "c"}, tmp_path / "model", sample=_table(200, 3))
    record = json.loads((directory / "metadata.json").read_text())["compiled"]
    assert record["status"] == "compiled", record
    model, twin = load(directory), python_twin(directory, monkeypatch)
    assert model.compiled and not twin.compiled
    rows = _requests()
    assert_same(model, twin, rows)
    for i in [0, 1, len(rows) - 3, len(rows) - 1]:
        assert_same(model, twin, rows.iloc[[i]])
    # the means, not their logs: near the target's scale (about 3,000), never negative
    values = np.asarray(model.predict(rows))
    assert (values > 0).all() and 2000 < np.median(values) < 4000


def test_catboost_on_numbers_only_compiles(tmp_path: Path, monkeypatch) -> None:
    """No categorical column: nothing is hashed (this once failed with KeyError '-1')."""
    df = _table().drop(columns=["city", "size"])
    schema = infer_schema(df)
    family = get_family("catboost")
    encoder = build_encoder(schema, family.style).fit(df)
    y = (df["x1"].fillna(0) + df["x2"] / 50 > 0.5).astype(int).to_numpy()
    data = FitData(encoder.transform(df), y, ProblemType.BINARY, 2, encoder.categorical_indices_)
    params = dict(family.portfolio(ProblemType.BINARY)[0], n_estimators=40)
    predictor = Predictor(encoder, "catboost", [family.fit(params, data)], ProblemType.BINARY,
                          schema.features, ["no", "yes"], threshold=0.5)
    directory = save(predictor, {"candidate": "c"}, tmp_path / "model", sample=df.head(100))
    record = json.loads((directory / "metadata.json").read_text())["compiled"]
    assert record["status"] == "compiled", record
    rows = _table(50, seed=9).drop(columns=["city", "size"])
    assert_same(load(directory), python_twin(directory, monkeypatch), rows)


@pytest.fixture(scope="module")
def bag() -> Predictor:
    return _predictor("lightgbm", ProblemType.BINARY, folds=2)


@pytest.fixture
def compiled_dir(tmp_path: Path, bag: Predictor) -> Path:
    return save(bag, {"candidate": "c"}, tmp_path / "model", sample=_table(100, 5))


def test_the_compiled_files_are_under_the_manifest(compiled_dir: Path) -> None:
    files = json.loads((compiled_dir / MANIFEST).read_text())["files"]
    assert {compiled.FOREST_FILE, compiled.KERNEL_FILE} <= set(files)
    for name in (compiled.FOREST_FILE, compiled.KERNEL_FILE):
        assert files[name]["sha256"] == _sha256(compiled_dir / name)


@pytest.mark.parametrize("name", [compiled.FOREST_FILE, compiled.KERNEL_FILE])
def test_a_modified_compiled_file_is_refused(compiled_dir: Path, name: str) -> None:
    path = compiled_dir / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load(compiled_dir)


def test_a_deleted_compiled_file_is_refused(compiled_dir: Path) -> None:
    (compiled_dir / compiled.FOREST_FILE).unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        load(compiled_dir)


def test_a_model_packaged_without_sample_rows_takes_the_python_path(tmp_path: Path,
                                                                   bag: Predictor) -> None:
    directory = save(bag, {"candidate": "c"}, tmp_path / "model")
    assert not (directory / compiled.FOREST_FILE).exists()
    model = load(directory)
    assert not model.compiled
    assert model.predict(_table(5)).tolist() == bag.predict(_table(5)).tolist()


def test_disabled_by_the_environment(tmp_path: Path, monkeypatch, bag: Predictor) -> None:
    monkeypatch.setenv("TABPILOT_COMPILED", "0")
    directory = save(bag, {"candidate": "c"}, tmp_path / "model", sample=_table(50))
    record = json.loads((directory / "metadata.json").read_text())["compiled"]
    assert record["status"] == "python" and "TABPILOT_COMPILED" in record["reason"]
    assert not (directory / compiled.FOREST_FILE).exists()


def _no_compiler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("TABPILOT_CACHE", str(tmp_path / "fresh-cache"))
    monkeypatch.setenv("CC", str(empty / "no-such-cc"))
    monkeypatch.setenv("PATH", str(empty))


def test_without_a_compiler_the_kernel_in_the_model_serves(compiled_dir: Path, tmp_path: Path,
                                                          monkeypatch) -> None:
    twin = python_twin(compiled_dir, monkeypatch)
    _no_compiler(monkeypatch, tmp_path)
    with pytest.raises(compiled.KernelUnavailable, match="no C compiler"):
        library()
    model = load(compiled_dir)
    assert model.compiled
    assert_same(model, twin, _requests())


def test_without_a_usable_kernel_the_python_path_serves(compiled_dir: Path, tmp_path: Path,
                                                       monkeypatch) -> None:
    """A model packaged on another platform: its kernel is the only one it may load."""
    twin = python_twin(compiled_dir, monkeypatch)
    (compiled_dir / compiled.KERNEL_FILE).write_bytes(b"\x7fELF not for this machine")
    manifest = json.loads((compiled_dir / MANIFEST).read_text())
    manifest["files"][compiled.KERNEL_FILE] = {
        "sha256": _sha256(compiled_dir / compiled.KERNEL_FILE),
        "bytes": (compiled_dir / compiled.KERNEL_FILE).stat().st_size}
    (compiled_dir / MANIFEST).write_text(json.dumps(manifest))
    _no_compiler(monkeypatch, tmp_path)
    model = load(compiled_dir)
    assert not model.compiled
    assert "does not load on this machine" in (model.python_reason or "")
    assert_same(model, twin, _requests())


def test_a_family_without_a_compiled_path_records_why(tmp_path: Path) -> None:
    predictor = _predictor("linear", ProblemType.BINARY)
    directory = save(predictor, {"candidate": "c"}, tmp_path / "model", sample=_table(50))
    record = json.loads((directory / "metadata.json").read_text())["compiled"]
    assert record["status"] == "python"
    assert "linear" in record["reason"]
    assert not load(directory).compiled


def test_no_time_left_skips_compiling(tmp_path: Path, bag: Predictor) -> None:
    directory = save(bag, {"candidate": "c"}, tmp_path / "model", sample=_table(50),
                     deadline=time.time() - 1)
    record = json.loads((directory / "metadata.json").read_text())["compiled"]
    assert record["status"] == "python" and "time" in record["reason"]
    assert not (directory / compiled.FOREST_FILE).exists()


def test_predictions_that_differ_are_caught(bag: Predictor) -> None:
    other = _predictor("lightgbm", ProblemType.BINARY, folds=2, seed=1)
    wrong = compiled.CompiledPredictor(bag, compiled.build_forest(other), library())
    with pytest.raises(compiled.Mismatch, match="differ"):
        compiled.check(bag, wrong, _table(100))
    right = compiled.CompiledPredictor(bag, compiled.build_forest(bag), library())
    assert compiled.check(bag, right, _table(100))["max_difference"] <= 1e-6


def test_the_row_encoder_gives_the_encoders_matrix(bag: Predictor) -> None:
    rows = _requests()
    encoder = RowEncoder(bag.encoder)
    assert encoder.direct
    for i in range(len(rows)):
        np.testing.assert_array_equal(encoder.encode(rows.iloc[[i]]),
                                      bag.encoder.transform(rows.iloc[[i]]))
    shuffled = rows[list(reversed(rows.columns))].iloc[:10]  # any column order
    np.testing.assert_array_equal(encoder.encode(shuffled), bag.encoder.transform(shuffled))


def test_a_large_batch_is_scored_on_every_core_with_the_same_result(compiled_dir: Path,
                                                                    monkeypatch) -> None:
    rows = pd.concat([_table(N, seed=s) for s in range(20)], ignore_index=True)
    assert len(rows) >= 5000 and (os.cpu_count() or 1) >= 1
    assert_same(load(compiled_dir), python_twin(compiled_dir, monkeypatch), rows)


def test_an_ensemble_keeps_the_compiled_paths_of_its_members(tmp_path: Path,
                                                             monkeypatch) -> None:
    from tabpilot.ensemble.predictor import EnsemblePredictor

    ptype = ProblemType.BINARY
    members = []
    for i, (name, folds) in enumerate([("lightgbm", 2), ("catboost", 1), ("linear", 1)]):
        directory = save(_predictor(name, ptype, folds), {"candidate": name},
                         tmp_path / f"m{i}" / "model", sample=_table(100, 5))
        members.append(load(directory).predictor)  # as jobs/ensembling.py loads them
    ensemble = EnsemblePredictor(members, [0.5, 0.3, 0.2], ["a", "b", "c"], ptype,
                                 CLASSES[ptype], 0.5)
    directory = save(ensemble, {"candidate": "ensemble"}, tmp_path / "ensemble" / "model")
    files = json.loads((directory / MANIFEST).read_text())["files"]
    assert {"compiled-member-0.npz", "compiled-member-1.npz", compiled.KERNEL_FILE} <= set(files)
    assert "compiled-member-2.npz" not in files  # the linear model has no compiled path
    model = load(directory)
    assert model.compiled
    assert [m.__dict__.get("compiled_") is not None for m in model.predictor.members] == \
        [True, True, False]
    twin = python_twin(directory, monkeypatch)
    assert not twin.compiled
    rows = _requests()
    assert_same(model, twin, rows)
    assert_same(model, twin, rows.iloc[[0]])
    (directory / "compiled-member-1.npz").write_bytes(b"changed")
    with pytest.raises(ModelIntegrityError):
        load(directory)
