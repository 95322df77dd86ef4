"""Composite model directories (format 2): an ensemble's or a stack's members as hard-linked
copies of the member candidates' model directories (tabpilot.artifacts.composite)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from compiledlib import assert_same, python_twin

from tabpilot.artifacts import Predictor, compiled, load, save, verify
from tabpilot.artifacts.manifest import MANIFEST, METADATA, PREDICTOR, sha256
from tabpilot.artifacts.package import load_many
from tabpilot.data.schema import infer_schema
from tabpilot.ensemble.predictor import EnsemblePredictor, StackPredictor
from tabpilot.ensemble.stacking import make_stacker, stack_features
from tabpilot.errors import ModelIntegrityError
from tabpilot.features import build_encoder
from tabpilot.models import FitData, get_family
from tabpilot.tasks import ProblemType

N = 300
BINARY = ProblemType.BINARY
CLASSES = ["no", "yes"]
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")


def _table(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.integers(0, 50, n).astype(float),
                       "size": rng.choice(["S", "M", "L"], n)})
    df.loc[rng.random(n) < 0.1, "x1"] = np.nan
    return df


def _target(df: pd.DataFrame) -> np.ndarray:
    score = df["x1"].fillna(0).to_numpy() + df["size"].eq("L") - df["x2"] / 50
    return (score > np.median(score)).astype(int)


def _predictor(name: str, seed: int = 0) -> Predictor:
    df = _table()
    schema = infer_schema(df)
    family = get_family(name)
    encoder = build_encoder(schema, family.style).fit(df)
    params = dict(family.portfolio(BINARY)[0], n_estimators=20)
    data = FitData(encoder.transform(df), _target(df), BINARY, 2, encoder.categorical_indices_,
                   seed=seed)
    return Predictor(encoder, name, [family.fit(params, data)], BINARY, schema.features,
                     CLASSES, threshold=0.5)


def _candidate(root: Path, name: str, compile_it: bool = True, seed: int = 0) -> Path:
    """A member candidate's model directory; without `compile_it` it has no compiled path
    (packaged past its deadline, as a trial that used all its time)."""
    return save(_predictor(name, seed), {"candidate": name}, root / f"{name}-{seed}" / "model",
                sample=_table(100, 5), deadline=None if compile_it else 0.0)


def _digests(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): sha256(p)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _ensemble(dirs: list[Path]) -> EnsemblePredictor:
    members = [m.predictor for m in load_many(dirs)]  # as jobs/ensembling.py loads them
    weights = [1.0 / len(dirs)] * len(dirs)
    return EnsemblePredictor(members, weights, [d.parent.name for d in dirs], BINARY, CLASSES,
                             0.5)


def _stack(level1: list[Path], out: Path) -> Path:
    """A stack of the candidates at `level1`, packaged without a sample (not compiled)."""
    trees = [load(d).predictor for d in level1]
    df = _table()
    stacker = make_stacker(BINARY).fit(
        stack_features([p.raw_predict(df) for p in trees], BINARY), _target(df))
    return save(StackPredictor(trees, ["a", "b"], stacker, BINARY, CLASSES),
                {"candidate": "stack"}, out, members=level1)


@pytest.fixture(scope="module")
def candidates(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("candidates")
    return {"lightgbm": _candidate(root, "lightgbm"),
            "lightgbm-2": _candidate(root, "lightgbm", seed=1),
            "random_forest": _candidate(root, "random_forest", compile_it=False),
            "xgboost": _candidate(root, "xgboost"), "linear": _candidate(root, "linear")}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory, candidates) -> tuple[Path, EnsemblePredictor, list[Path]]:
    """An ensemble of two compiled members, one compiled at its packaging and a linear one."""
    dirs = [candidates[n] for n in ["lightgbm", "lightgbm-2", "random_forest", "linear"]]
    ensemble = _ensemble(dirs)
    out = tmp_path_factory.mktemp("ensemble") / "model"
    save(ensemble, {"candidate": "ensemble"}, out, sample=_table(100, 5), members=dirs)
    return out, ensemble, dirs


def test_members_are_hard_links_and_the_candidates_stay_unchanged(candidates) -> None:
    dirs = [candidates[n] for n in ["lightgbm", "random_forest"]]
    before = {d: _digests(d) for d in dirs}
    out = save(_ensemble(dirs), {"candidate": "e"}, dirs[0].parent.parent / "e" / "model",
               sample=_table(100, 5), members=dirs)
    assert {d: _digests(d) for d in dirs} == before  # nothing written through a link
    assert not (dirs[1] / compiled.FOREST_FILE).exists()
    for i, source in enumerate(dirs):
        copy = out / "members" / str(i)
        linked = [PREDICTOR] + ([compiled.FOREST_FILE, METADATA, MANIFEST] if i == 0 else [])
        for name in linked:
            assert (copy / name).stat().st_ino == (source / name).stat().st_ino, name
    # compiled at the ensemble's packaging: new files in the copy, not the candidate's
    copy = out / "members" / "1"
    assert (copy / compiled.FOREST_FILE).is_file()
    for name in [METADATA, MANIFEST]:
        assert (copy / name).stat().st_ino != (dirs[1] / name).stat().st_ino
    assert json.loads((copy / METADATA).read_text())["compiled"]["status"] == "compiled"
    files = verify(out)["files"]  # the copy's new manifest agrees with its files
    assert {"members/0/predictor.pkl", "members/1/compiled.npz", "members/1/manifest.json",
            PREDICTOR, METADATA} <= set(files)


def test_the_composite_loads_and_predicts_as_in_memory(packaged, monkeypatch) -> None:
    out, ensemble, _ = packaged
    metadata = json.loads((out / METADATA).read_text())
    assert metadata["format"] == 2 and metadata["member_dirs"] == 4
    assert metadata["compiled"]["members"] == [0, 1, 2]
    assert set(metadata["compiled"]["compiled_here"]) == {"2"}  # the linear one not tried
    model = load(out)
    singles = model.predictor.members
    assert [m.__dict__.get("compiled_") is not None for m in singles] == [True, True, True,
                                                                          False]
    assert singles[0].compiled_.rows is singles[1].compiled_.rows  # equal encoders: one
    # the ensemble in memory was given the compiled path written for its third member
    assert ensemble.members[2].__dict__.get("compiled_") is not None
    rows = _table(80, seed=9)
    np.testing.assert_allclose(model.predict_proba(rows).to_numpy(),
                               ensemble.raw_predict(rows), rtol=0, atol=1e-6)
    twin = python_twin(out, monkeypatch)
    assert not twin.compiled
    assert_same(model, twin, rows)
    assert_same(model, twin, rows.iloc[[3]])


@pytest.mark.parametrize("how", ["changed", "missing"])
def test_a_tampered_member_file_fails_verification(packaged, tmp_path: Path, how: str) -> None:
    out, ensemble, dirs = packaged
    copy = save(ensemble, {"candidate": "e"}, tmp_path / "model", members=dirs)
    target = copy / "members" / "1" / PREDICTOR
    data = bytearray(target.read_bytes())
    target.unlink()  # a new file: the candidate's own, linked, stays as it was
    if how == "changed":
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="members/1/predictor.pkl"):
        load(copy)
    verify(dirs[1])


def test_a_format_1_composite_still_loads(packaged, tmp_path: Path) -> None:
    """Written as before (members pickled inside, compiled-member-<i>.npz), as users have."""
    out, ensemble, _ = packaged
    old = save(ensemble, json.loads((out / METADATA).read_text()), tmp_path / "model",
               sample=_table(100, 5))
    metadata = json.loads((old / METADATA).read_text())
    assert metadata["format"] == 1 and "member_dirs" not in metadata
    assert not (old / "members").exists()
    assert (old / compiled.member_file(2)).is_file()
    model = load(old)
    assert [m.__dict__.get("compiled_") is not None for m in model.predictor.members] == \
        [True, True, True, False]
    rows = _table(50, seed=4)
    np.testing.assert_allclose(model.predict_proba(rows).to_numpy(),
                               load(out).predict_proba(rows).to_numpy(), rtol=0, atol=1e-6)


def test_a_stack_inside_an_ensemble_round_trips_compiled(candidates, tmp_path: Path,
                                                         monkeypatch) -> None:
    level1 = [candidates[n] for n in ["lightgbm", "random_forest"]]
    stack_dir = _stack(level1, tmp_path / "stack" / "model")
    assert not (stack_dir / "members" / "1" / compiled.FOREST_FILE).exists()  # no sample
    before = _digests(stack_dir)
    # the random forest twice, in the stack and beside it (as wine_quality's ensembles)
    dirs = [stack_dir, candidates["xgboost"], candidates["random_forest"]]
    out = save(_ensemble(dirs), {"candidate": "e"}, tmp_path / "ensemble" / "model",
               sample=_table(100, 5), members=dirs)
    assert _digests(stack_dir) == before
    nested = out / "members" / "0" / "members"
    assert (nested / "0" / PREDICTOR).stat().st_ino == (level1[0] / PREDICTOR).stat().st_ino
    forest = nested / "1" / compiled.FOREST_FILE  # compiled at the ensemble's, once
    assert forest.stat().st_ino == (out / "members" / "2" / compiled.FOREST_FILE).stat().st_ino
    record = json.loads((out / METADATA).read_text())["compiled"]
    assert record["members"] == [0, 1, 2, 3]
    assert set(record["compiled_here"]) == {"1", "3"}
    assert record["compiled_here"]["3"]["same_as"] == 1
    verify(out / "members" / "0")  # the stack copy's own manifest was rewritten to match
    verify(out / "members" / "2")
    model, twin = load(out), python_twin(out, monkeypatch)
    assert model.compiled and isinstance(model.predictor.members[0], StackPredictor)
    assert model.predictor.members[2] is model.predictor.members[0].members[1]  # read once
    inside = compiled.single_predictors(model.predictor)
    assert [p.family for p in inside] == ["lightgbm", "random_forest", "xgboost",
                                          "random_forest"]
    assert all(p.__dict__.get("compiled_") is not None for p in inside)
    rows = _table(60, seed=8)
    assert_same(model, twin, rows)
    assert_same(model, twin, rows.iloc[[1]])


def test_a_candidate_held_twice_answers_once_a_request(candidates, tmp_path: Path) -> None:
    level1 = [candidates[n] for n in ["lightgbm", "xgboost"]]
    stack_dir = _stack(level1, tmp_path / "stack" / "model")
    dirs = [stack_dir, candidates["xgboost"], candidates["linear"]]
    built = _ensemble(dirs)  # the members as the job builds the ensemble: read once too
    assert built.members[1] is built.members[0].members[1]
    out = save(built, {"candidate": "e"}, tmp_path / "ensemble" / "model", members=dirs)
    rows = _table(40, seed=3)
    for ensemble in (built, load(out).predictor):
        shared = ensemble.members[1]
        assert shared is ensemble.members[0].members[1]
        expected = ensemble.raw_predict(rows)
        calls: list[int] = []
        answer = shared._answer
        shared._answer = lambda X, answer=answer, calls=calls: calls.append(len(X)) or answer(X)
        try:
            for frame in (rows, rows.iloc[[2]], rows):
                got = ensemble.raw_predict(frame)
            one = shared.raw_predict(rows)  # a call of its own: not the ensemble's request
        finally:
            del shared._answer
        np.testing.assert_array_equal(got, expected)  # the same answer as before
        assert calls == [40, 1, 40, 40]
        np.testing.assert_array_equal(one, load(candidates["xgboost"]).predictor.raw_predict(
            rows))


def test_members_are_copied_where_hard_links_fail(packaged, tmp_path: Path,
                                                  monkeypatch) -> None:
    out, ensemble, dirs = packaged

    def refuse(src, dst, *args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", refuse)
    copy = save(ensemble, {"candidate": "e"}, tmp_path / "model", members=dirs)
    assert (copy / "members" / "0" / PREDICTOR).stat().st_ino != \
        (dirs[0] / PREDICTOR).stat().st_ino
    rows = _table(30, seed=2)
    np.testing.assert_allclose(load(copy).predict_proba(rows).to_numpy(),
                               load(out).predict_proba(rows).to_numpy(), rtol=0, atol=1e-6)


def test_the_composite_outlives_its_member_candidates(candidates, tmp_path: Path) -> None:
    """Self-contained: removing the member candidates (hard links) or copying the folder
    elsewhere keeps a model that verifies and predicts the same."""
    dirs = []
    for name in ["lightgbm", "xgboost"]:
        dirs.append(tmp_path / name / "model")
        shutil.copytree(candidates[name], dirs[-1])
    out = save(_ensemble(dirs), {"candidate": "e"}, tmp_path / "e" / "model", members=dirs)
    rows = _table(40, seed=6)
    expected = load(out).predict_proba(rows).to_numpy()
    for d in dirs:
        shutil.rmtree(d.parent)
    moved = shutil.copytree(out, tmp_path / "elsewhere" / "model")
    for model_dir in [out, moved]:
        np.testing.assert_allclose(load(model_dir).predict_proba(rows).to_numpy(), expected,
                                   rtol=0, atol=0)
