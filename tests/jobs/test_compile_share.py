"""Compiling the members whose trial ran out of time: estimated before the ensemble and the
stack are packaged (tabpilot.jobs.compile_cost), and a compile that does not fit leaves
its member out or is reported, never shipped silently on the Python path."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.artifacts import Predictor, compiled, load, save
from tabpilot.artifacts.manifest import METADATA
from tabpilot.data.prepare import Prepared, prepare
from tabpilot.data.split import Split, make_split
from tabpilot.ensemble import StackPredictor
from tabpilot.ensemble.stacking import make_stacker, stack_features
from tabpilot.execution.trial import VALIDATION_PREDICTIONS
from tabpilot.features import build_encoder
from tabpilot.jobs import compile_cost, ensembling, stacking
from tabpilot.models import FitData, get_family

HOUR = 3600.0  # a deadline far enough for loading: only the compile estimates decide
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")


def _table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.integers(0, 50, n).astype(float),
                       "size": rng.choice(["S", "M", "L"], n)})
    score = df["x1"] + df["size"].eq("L") - df["x2"] / 50
    df["y"] = np.where(score > score.median(), "yes", "no")
    return df


@pytest.fixture(scope="module")
def data() -> tuple[Prepared, Split]:
    prepared = prepare(_table(), "y")
    return prepared, make_split(prepared.y, True, n_folds=1)


def _candidate(root: Path, data: tuple[Prepared, Split], name: str, family_name: str,
               compile_it: bool = True, n_estimators: int = 20, noise: float = 0.5,
               seed: int = 0) -> Path:
    """A candidate's folder: its model (without `compile_it`, packaged past its deadline,
    as a trial that used all its time) and validation predictions: the truth's logit plus
    noise of their own, so that an ensemble beats each one."""
    prepared, split = data
    family = get_family(family_name)
    encoder = build_encoder(prepared.schema, family.style).fit(prepared.X)
    params = dict(family.portfolio(prepared.problem_type)[0], n_estimators=n_estimators)
    fit = FitData(encoder.transform(prepared.X), prepared.y, prepared.problem_type, 2,
                  encoder.categorical_indices_)
    predictor = Predictor(encoder, family_name, [family.fit(params, fit)],
                          prepared.problem_type, prepared.schema.features, prepared.classes,
                          threshold=0.5)
    folder = root / name
    save(predictor, {"candidate": name, "family": family_name}, folder / "model",
         sample=prepared.X.iloc[:100], deadline=None if compile_it else 0.0)
    y = prepared.y[split.validation_rows()]
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-(np.where(y == 1, 1.0, -1.0) + noise * rng.normal(size=len(y)))))
    np.save(folder / VALIDATION_PREDICTIONS, np.column_stack([1 - p, p]).astype(np.float32))
    return folder


@pytest.fixture(scope="module")
def pool(tmp_path_factory, data) -> list[tuple[str, Path]]:
    """Best first: an uncompiled random forest, then compiled LightGBM and XGBoost."""
    root = tmp_path_factory.mktemp("candidates")
    return [("random_forest-001", _candidate(root, data, "random_forest-001", "random_forest",
                                             compile_it=False, noise=1.0, seed=1)),
            ("lightgbm-002", _candidate(root, data, "lightgbm-002", "lightgbm", noise=1.5,
                                        seed=2)),
            ("xgboost-003", _candidate(root, data, "xgboost-003", "xgboost", noise=1.5,
                                       seed=3))]


def _worst(prepared: Prepared) -> float:
    return float("-inf") if prepared.metric.greater_is_better else float("inf")


def _metadata(directory: Path) -> dict:
    return json.loads((directory / METADATA).read_text())


# -- the estimate ------------------------------------------------------------------------

def test_the_estimate_grows_with_an_uncompiled_member_s_bytes_and_is_zero_compiled(
        tmp_path: Path, data, monkeypatch) -> None:
    small = _candidate(tmp_path, data, "small", "lightgbm", compile_it=False) / "model"
    large = _candidate(tmp_path, data, "large", "lightgbm", compile_it=False,
                       n_estimators=200) / "model"
    done = _candidate(tmp_path, data, "done", "lightgbm", n_estimators=200) / "model"
    linear = _candidate(tmp_path, data, "linear", "linear", compile_it=False) / "model"
    with monkeypatch.context() as m:  # disabled in its trial: not a failure of time
        m.setenv("TABPILOT_COMPILED", "0")
        disabled = _candidate(tmp_path, data, "disabled", "lightgbm") / "model"
    assert 0 < compile_cost.seconds([small]) < compile_cost.seconds([large])
    assert compile_cost.seconds([done]) == 0.0
    assert compile_cost.seconds([linear]) == 0.0  # no compiled path to make
    assert compile_cost.seconds([disabled]) == 0.0  # it would fail again: not retried
    assert compile_cost.seconds([small, large, done]) == pytest.approx(
        compile_cost.seconds([small]) + compile_cost.seconds([large]))
    [pending] = compile_cost.pending([done, large])
    assert (pending.member, pending.directory, pending.family) == (1, large, "lightgbm")
    assert pending.seconds == pytest.approx(compile_cost.estimate("lightgbm", pending.bytes))
    # boosting converters walk their trees in Python: dearer per byte than forests
    assert compile_cost.estimate("lightgbm", 100e6) > 10 * compile_cost.estimate(
        "random_forest", 100e6)


def test_a_member_in_a_stack_and_beside_it_is_compiled_once(tmp_path: Path, data,
                                                            pool) -> None:
    prepared, _ = data
    forest, gbm = pool[0][1] / "model", pool[1][1] / "model"
    trees = [load(d).predictor for d in [gbm, forest]]
    stacker = make_stacker(prepared.problem_type).fit(
        stack_features([p.raw_predict(prepared.X) for p in trees], prepared.problem_type),
        prepared.y)
    stack = StackPredictor(trees, ["g", "f"], stacker, prepared.problem_type, prepared.classes)
    bare = save(stack, {"candidate": "bare"}, tmp_path / "bare" / "model", members=[gbm, forest])
    [inside] = compile_cost.pending([bare, forest])  # the forest, counted once
    assert inside.member == 0 and inside.family == "random_forest"
    built = save(stack, {"candidate": "stack"}, tmp_path / "stack" / "model",
                 sample=prepared.X.iloc[:100], members=[gbm, forest])
    assert (built / "members" / "1" / compiled.FOREST_FILE).is_file()
    # compiled in the stack's copy: the ensemble beside it shares that, at no cost
    assert compile_cost.pending([built, forest]) == []
    members = [load(built).predictor, load(forest).predictor]
    ensemble = ensembling.EnsemblePredictor(members, [0.5, 0.5], ["s", "f"],
                                            prepared.problem_type, prepared.classes, 0.5)
    out = save(ensemble, {"candidate": "e"}, tmp_path / "e" / "model",
               sample=prepared.X.iloc[:100], members=[built, forest])
    record = _metadata(out)["compiled"]
    assert record["members"] == [0, 1, 2] and "uncompiled" not in record
    assert record["compiled_here"]["2"]["same_as"] == 1
    assert (out / "members" / "1" / compiled.FOREST_FILE).stat().st_ino == \
        (out / "members" / "0" / "members" / "1" / compiled.FOREST_FILE).stat().st_ino


# -- the ensemble ------------------------------------------------------------------------

def test_the_ensemble_compiles_an_uncompiled_member_when_it_fits(tmp_path: Path, data,
                                                                pool) -> None:
    prepared, split = data
    result = ensembling.build(prepared, split, pool, _worst(prepared),
                              tmp_path / "ensemble-004" / "model", time.time() + HOUR)
    assert result is not None and "random_forest-001" in result.weights
    metadata = _metadata(result.directory)
    assert "left_out_uncompiled" not in metadata
    assert "uncompiled" not in metadata["compiled"]
    assert load(result.directory).compiled


def test_a_forest_a_composite_compiled_is_linked_compiled_into_the_next(tmp_path: Path,
                                                                        data) -> None:
    """A stack's twin, or an ensemble after a stack, holds the forest the first composite
    compiled: its copy there is linked, not compiled again (diamonds, 60 s: the twin ran
    out of time doing so and held the forest on the Python path)."""
    prepared, split = data
    root = tmp_path / "candidates"
    forest = _candidate(root, data, "random_forest-001", "random_forest", compile_it=False,
                        noise=1.0, seed=1)
    pool = [("random_forest-001", forest),
            ("lightgbm-002", _candidate(root, data, "lightgbm-002", "lightgbm", noise=1.5,
                                        seed=2)),
            ("xgboost-003", _candidate(root, data, "xgboost-003", "xgboost", noise=1.5,
                                       seed=3))]
    assert compile_cost.member_source(forest) == forest / "model"  # none compiled it yet
    first = ensembling.build(prepared, split, pool, _worst(prepared),
                             root / "ensemble-004" / "model", time.time() + HOUR)
    assert first is not None and "random_forest-001" in first.weights
    copy = compile_cost.member_source(forest)
    assert copy.is_relative_to(first.directory / "members")
    assert (copy / compiled.FOREST_FILE).is_file() and compile_cost.pending([copy]) == []
    assert not (forest / "model" / compiled.FOREST_FILE).exists()  # the candidate as it was
    second = ensembling.build(prepared, split, pool, _worst(prepared),
                              root / "ensemble-005" / "model", time.time() + HOUR)
    assert second is not None and second.weights == first.weights
    record = _metadata(second.directory)["compiled"]
    assert "compiled_here" not in record and "uncompiled" not in record  # nothing compiled
    linked = second.directory / "members" / str(list(second.weights).index("random_forest-001"))
    assert (linked / compiled.FOREST_FILE).stat().st_ino == \
        (copy / compiled.FOREST_FILE).stat().st_ino
    assert load(second.directory).compiled


def test_a_member_whose_compile_does_not_fit_is_left_out(tmp_path: Path, data, pool,
                                                        monkeypatch, caplog) -> None:
    prepared, split = data
    monkeypatch.setitem(compile_cost.SECONDS_PER_MB, "random_forest", 1e9)
    with caplog.at_level(logging.WARNING, "tabpilot.jobs.ensembling"):
        result = ensembling.build(prepared, split, pool, _worst(prepared),
                                  tmp_path / "ensemble-004" / "model", time.time() + HOUR)
    assert result is not None
    assert set(result.weights) == {"lightgbm-002", "xgboost-003"}  # selected again without it
    assert _metadata(result.directory)["left_out_uncompiled"] == ["random_forest-001"]
    assert "leaving random_forest-001 out of the ensemble" in caplog.text
    model = load(result.directory)
    assert all(p.__dict__.get("compiled_") is not None
               for p in compiled.single_predictors(model.predictor))


def test_no_ensemble_when_only_one_member_s_compile_fits(tmp_path: Path, data, pool,
                                                         monkeypatch) -> None:
    prepared, split = data
    pair = pool[:2]  # without the forest, a single candidate is left: no ensemble
    monkeypatch.setitem(compile_cost.SECONDS_PER_MB, "random_forest", 1e9)
    far = time.time() + HOUR  # a deadline nothing reaches: only the estimate decides
    assert ensembling.choose(prepared, split, pair, _worst(prepared), far) is None
    assert ensembling.build(prepared, split, pair, _worst(prepared), tmp_path / "e" / "model",
                            far) is None


def test_a_compile_that_overruns_is_reported_in_the_record_and_the_log(
        tmp_path: Path, data, pool, monkeypatch, caplog) -> None:
    """The estimate fitted, the compile ran past its deadline all the same: the ensemble
    ships, saying which member answers on the Python path."""
    prepared, split = data

    def late(*args, **kwargs):
        raise TimeoutError("compiling ran past the time allowed for packaging")

    monkeypatch.setattr(compiled, "build_forest", late)
    with caplog.at_level(logging.WARNING, "tabpilot.jobs.ensembling"):
        result = ensembling.build(prepared, split, pool, _worst(prepared),
                                  tmp_path / "ensemble-004" / "model", time.time() + HOUR)
    assert result is not None and "random_forest-001" in result.weights
    [entry] = _metadata(result.directory)["compiled"]["uncompiled"]
    assert entry["candidate"] == "random_forest-001" and "time" in entry["reason"]
    assert "holds random_forest-001 uncompiled" in caplog.text


# -- the stack ---------------------------------------------------------------------------

def _ranked(pool: list[tuple[str, Path]]) -> list[tuple[str, Path, str, float | None]]:
    return [(n, d, n.split("-")[0], 5.0) for n, d in pool]


def test_the_stack_leaves_out_a_member_whose_compile_does_not_fit(pool, monkeypatch) -> None:
    members, needed, left_out = stacking._fitting_members(_ranked(pool), HOUR)
    assert [n for n, _ in members] == ["random_forest-001", "lightgbm-002", "xgboost-003"]
    assert needed > stacking.SECONDS_PER_MEMBER * 3 + stacking.PACKAGE_SECONDS  # its compile
    assert left_out == []
    monkeypatch.setitem(compile_cost.SECONDS_PER_MB, "random_forest", 1e9)
    members, needed, left_out = stacking._fitting_members(_ranked(pool), HOUR)
    assert [n for n, _ in members] == ["lightgbm-002", "xgboost-003"]
    assert left_out == ["random_forest-001"]
    with pytest.raises(stacking.Skipped, match="left out: random_forest-001"):
        stacking._fitting_members(_ranked(pool[:2]), HOUR)
