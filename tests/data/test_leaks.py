"""Target leak detection on scikit-learn's bundled tables, clean and with planted leaks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine

from tabpilot.data.leaks import Leak, find_leaks
from tabpilot.data.profile import profile
from tabpilot.data.schema import ColumnKind, Schema, infer_schema
from tabpilot.tasks import ProblemType

PLANTED = "planted"


def _table(loader, ptype: ProblemType) -> tuple[pd.DataFrame, np.ndarray, list | None]:
    data = loader(as_frame=True)
    y = data.target.to_numpy()
    classes = list(getattr(data, "target_names", [])) if ptype.is_classification else None
    return data.data.copy(), (y if ptype.is_classification else y.astype(float)), classes


def _leaks(X: pd.DataFrame, y: np.ndarray, ptype: ProblemType, classes: list | None = None,
           schema: Schema | None = None) -> list[Leak]:
    return find_leaks(X, y, schema or infer_schema(X), ptype, classes)


def _flag(leaks: list[Leak], column: str) -> Leak | None:
    return next((leak for leak in leaks if leak.column == column), None)


def _wrong(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    return rng.permutation(n) < round(share * n)


def _noisy_classes(y: np.ndarray, k: int, share: float, seed: int = 0) -> np.ndarray:
    """The classes with `share` of the rows given another class (clerical errors)."""
    rng = np.random.default_rng(seed)
    return np.where(_wrong(rng, len(y), share), (y + rng.integers(1, k, len(y))) % k, y)


def _noisy_values(y: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(_wrong(rng, len(y), share), rng.permutation(y), y)


CLEAN = [(load_breast_cancer, ProblemType.BINARY), (load_iris, ProblemType.MULTICLASS),
         (load_wine, ProblemType.MULTICLASS), (load_digits, ProblemType.MULTICLASS),
         (load_diabetes, ProblemType.REGRESSION)]


@pytest.mark.parametrize(("loader", "ptype"), CLEAN, ids=lambda v: getattr(v, "__name__", v))
def test_clean_tables_raise_no_high_severity_leak(loader, ptype) -> None:
    X, y, classes = _table(loader, ptype)
    leaks = _leaks(X, y, ptype, classes)
    assert [leak.message for leak in leaks if leak.severity == "high"] == []
    # breast cancer's best columns reach an AUC of 0.975, yet are no copy of the label
    assert all(leak.rule in ("near_perfect", "row_order") for leak in leaks)


@pytest.mark.parametrize("share", [0.01, 0.02, 0.05])
@pytest.mark.parametrize(("loader", "ptype"), [(load_breast_cancer, ProblemType.BINARY),
                                               (load_digits, ProblemType.MULTICLASS)],
                         ids=["breast_cancer", "digits"])
def test_a_noisy_copy_of_the_label_is_flagged(loader, ptype, share: float) -> None:
    """A field filled in after the outcome, with a few clerical errors."""
    X, y, classes = _table(loader, ptype)
    names = np.array([f"status {c}" for c in classes], dtype=object)
    X[PLANTED] = names[_noisy_classes(y, len(classes), share)]
    leak = _flag(_leaks(X, y, ptype, classes), PLANTED)
    assert leak is not None and leak.rule in ("near_perfect", "dominant")
    assert leak.severity == ("high" if share < 0.05 else leak.severity)
    assert leak.severity in ("high", "medium")
    assert leak.evidence["measure"] in ("agreement", "information share")
    assert leak.evidence["score"] > leak.evidence["next_best_score"]
    assert PLANTED in leak.message and f"{leak.evidence['score']:.3f}" in leak.message


def test_a_scaled_shifted_noisy_copy_of_a_number_is_flagged() -> None:
    X, y, _ = _table(load_diabetes, ProblemType.REGRESSION)
    rng = np.random.default_rng(1)
    X[PLANTED] = 2.5 * _noisy_values(y, 0.01) + 100 + rng.normal(0, 0.1 * y.std(), len(y))
    leak = _flag(_leaks(X, y, ProblemType.REGRESSION), PLANTED)
    assert leak is not None and leak.severity == "high" and leak.rule == "transformed_copy"
    assert leak.evidence["metrics"]["pearson"] >= 0.98
    assert "scaled" in leak.message


def test_a_scaled_copy_of_the_class_number_is_flagged() -> None:
    X, y, classes = _table(load_wine, ProblemType.MULTICLASS)
    rng = np.random.default_rng(2)
    X[PLANTED] = -3.7 * _noisy_classes(y, 3, 0.02) + 12 + rng.normal(0, 0.3, len(y))
    leak = _flag(_leaks(X, y, ProblemType.MULTICLASS, classes), PLANTED)
    assert leak is not None and leak.severity == "high"
    assert leak.evidence["metrics"]["interval_agreement"] >= 0.95


@pytest.mark.parametrize("share", [0.0, 0.02, 0.05])
def test_a_monotone_transform_with_wrong_rows_is_flagged(share: float) -> None:
    X, y, _ = _table(load_diabetes, ProblemType.REGRESSION)
    X[PLANTED] = np.log(_noisy_values(y, share))  # log of a copy with some rows wrong
    leak = _flag(_leaks(X, y, ProblemType.REGRESSION), PLANTED)
    assert leak is not None and leak.severity == "high"
    assert leak.evidence["measure"] in ("spearman", "rank agreement")
    assert "monotone transform" in leak.message


@pytest.mark.parametrize("share", [0.0, 0.02, 0.05])
def test_a_bucketed_numeric_target_is_flagged(share: float) -> None:
    X, y, _ = _table(load_diabetes, ProblemType.REGRESSION)
    buckets = pd.qcut(y, 5, labels=False)
    names = np.array(["very low", "low", "middle", "high", "very high"], dtype=object)
    X[PLANTED] = names[_noisy_classes(buckets, 5, share)]
    leak = _flag(_leaks(X, y, ProblemType.REGRESSION), PLANTED)
    assert leak is not None and leak.severity == "high"
    assert leak.evidence["measure"] == "bucket agreement"
    assert "cut into buckets" in leak.message


def test_the_label_text_inside_a_note_is_flagged() -> None:
    X, y, classes = _table(load_breast_cancer, ProblemType.BINARY)
    rng = np.random.default_rng(3)
    said = _noisy_classes(y, 2, 0.03)
    X["status_note"] = [f"reviewed by {rng.choice(['ann', 'bo', 'cy'])}: {classes[c].upper()}, "
                        f"ref {rng.integers(10**5)}" if rng.random() < 0.9 else
                        f"pending, ref {rng.integers(10**5)}" for c in said]
    schema = infer_schema(X)
    assert schema.kinds["status_note"] is not ColumnKind.NUMERIC
    leak = _flag(_leaks(X, y, ProblemType.BINARY, classes, schema), "status_note")
    assert leak is not None and leak.severity == "high" and leak.rule == "label_text"
    assert 0.85 <= leak.evidence["coverage"] <= 0.95 and leak.evidence["score"] >= 0.95


def test_a_field_filled_in_only_after_one_outcome_is_flagged() -> None:
    """Present for one class only (a refund date): its missingness is the label."""
    X, y, classes = _table(load_breast_cancer, ProblemType.BINARY)
    rng = np.random.default_rng(4)
    X["refund_amount"] = np.where(_noisy_classes(y, 2, 0.01) == 0,
                                  rng.gamma(2, 30, len(y)).round(2), np.nan)
    leak = _flag(_leaks(X, y, ProblemType.BINARY, classes), "refund_amount")
    assert leak is not None and leak.severity == "high"


def test_a_dominant_column_that_is_not_near_perfect_is_medium() -> None:
    X, y, classes = _table(load_digits, ProblemType.MULTICLASS)
    X[PLANTED] = [f"s{c}" for c in _noisy_classes(y, 10, 0.2)]  # 80 % right
    leak = _flag(_leaks(X, y, ProblemType.MULTICLASS, classes), PLANTED)
    assert leak is not None and leak.severity == "medium" and leak.rule == "dominant"
    assert leak.evidence["information_share"] >= 3 * leak.evidence[
        "next_best_information_share"]


def test_ids_given_in_target_order_are_flagged_medium() -> None:
    X, y, classes = _table(load_digits, ProblemType.MULTICLASS)
    rng = np.random.default_rng(5)
    order = np.argsort(y + rng.random(len(y)) * 0.5, kind="stable")
    ids = np.empty(len(y), dtype=np.int64)
    ids[order] = np.arange(7000, 7000 + len(y))
    moved = np.flatnonzero(_wrong(rng, len(y), 0.02))
    ids[moved] = ids[rng.permutation(moved)]
    X.insert(0, "record_id", ids)
    schema = infer_schema(X)
    assert schema.kinds["record_id"] is ColumnKind.ID
    leaks = _leaks(X, y, ProblemType.MULTICLASS, classes, schema)
    leak = _flag(leaks, "record_id")
    assert leak is not None and leak.severity == "medium" and leak.rule == "id_order"
    assert not any(leak.rule == "row_order" for leak in leaks)  # the rows are not sorted


def test_rows_sorted_by_the_target_are_a_low_note() -> None:
    X, y, classes = _table(load_iris, ProblemType.MULTICLASS)  # iris is sorted by species
    leak = _flag(_leaks(X, y, ProblemType.MULTICLASS, classes), "(row order)")
    assert leak is not None and leak.severity == "low"
    shuffled = np.random.default_rng(6).permutation(len(y))
    again = _leaks(X.iloc[shuffled], y[shuffled], ProblemType.MULTICLASS, classes)
    assert _flag(again, "(row order)") is None


def test_ids_and_high_cardinality_columns_are_not_leaks() -> None:
    """A value per row is 'pure' (each value holds one class), but it is no leak."""
    X, y, classes = _table(load_breast_cancer, ProblemType.BINARY)
    rng = np.random.default_rng(7)
    X["ticket"] = [f"T{v}" for v in rng.permutation(10**6)[: len(y)]]
    X["serial"] = rng.permutation(len(y)) * 7 + 3
    X["city"] = rng.choice([f"city{i}" for i in range(200)], len(y))
    # as features (not ids), they are scored too
    schema = Schema({c: ColumnKind.NUMERIC for c in X.columns} | {
        "ticket": ColumnKind.CATEGORICAL, "city": ColumnKind.CATEGORICAL})
    purity = pd.Series(y).groupby(X["ticket"].to_numpy()).agg(lambda s: s.value_counts().iloc[0]
                                                              / len(s))
    assert purity.min() == 1.0  # what the old purity rule took for a perfect leak
    flagged = {leak.column for leak in _leaks(X, y, ProblemType.BINARY, classes, schema)}
    assert flagged.isdisjoint({"ticket", "serial", "city"})


def test_the_profile_carries_json_ready_evidence_with_a_plot() -> None:
    X, y, classes = _table(load_wine, ProblemType.MULTICLASS)
    X["grade_given_later"] = [f"g{c}" for c in _noisy_classes(y, 3, 0.02)]
    out = profile(X, y, infer_schema(X), ProblemType.MULTICLASS, classes)
    leaks = [i for i in out["insights"] if i["kind"] == "target_leakage"]
    assert leaks[0]["columns"] == ["grade_given_later"] and leaks[0]["severity"] == "high"
    assert out["insights"][0] == leaks[0]  # most severe first
    evidence = leaks[0]["evidence"]
    plot = evidence["plot"]
    assert plot["type"] == "crosstab" and plot["columns"] == [str(c) for c in classes]
    assert np.asarray(plot["counts"]).sum() == len(y)
    assert json.loads(json.dumps(out))["insights"][0]["evidence"] == evidence
    others = [i for i in out["insights"] if i["kind"] != "target_leakage"]
    assert all(i["evidence"] == {} for i in others)


def test_a_regression_leak_is_plotted_as_points() -> None:
    X, y, _ = _table(load_diabetes, ProblemType.REGRESSION)
    X[PLANTED] = y * 3 + 1
    leak = _flag(_leaks(X, y, ProblemType.REGRESSION), PLANTED)
    assert leak is not None
    plot = leak.evidence["plot"]
    assert plot["type"] == "scatter" and len(plot["x"]) == len(plot["y"]) == 300
    assert np.corrcoef(plot["x"], plot["y"])[0, 1] > 0.999


def test_the_exploration_notebook_shows_each_leak_with_a_plot(tmp_path) -> None:
    import nbformat

    from tabpilot.reports.notebooks import exploration_notebook

    X, y, classes = _table(load_breast_cancer, ProblemType.BINARY)
    X["outcome_code"] = [f"code-{c}" for c in _noisy_classes(y, 2, 0.02)]
    out = profile(X, y, infer_schema(X), ProblemType.BINARY, classes)
    (tmp_path / "data_exploration.json").write_text(json.dumps(out))
    (tmp_path / "job.json").write_text(json.dumps({"request": {"name": "leaky"}}))
    nb = nbformat.read(exploration_notebook(tmp_path, "leaky"), as_version=4)
    heading = next(i for i, c in enumerate(nb.cells) if "Possible target leaks" in c.source)
    cell = nb.cells[heading + 1]
    assert not [o for o in cell.outputs if o.get("output_type") == "error"]
    text = json.dumps(cell.outputs)
    assert "outcome_code" in text and "image/png" in text
