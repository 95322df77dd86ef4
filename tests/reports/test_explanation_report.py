"""What the Explainability report holds (reports/explain.py `explanation`): TreeSHAP values
that add up to the booster's own output, their units, the SHAP summary and partial
dependence computed as their definitions say."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from tabpilot.artifacts import Predictor
from tabpilot.data.schema import infer_schema
from tabpilot.features import build_encoder
from tabpilot.metrics import METRICS
from tabpilot.models import FitData, get_family
from tabpilot.reports.explain import explain, explanation, partial_dependence
from tabpilot.tasks import ProblemType


def _data(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"signal": rng.normal(size=n), "noise": rng.normal(size=n),
                      "plan": rng.choice(["basic", "plus", "pro"], n)})
    score = 2 * X["signal"] + (X["plan"] == "pro") * 1.5 + rng.normal(0, 0.3, n)
    return X, (score > 0.5).astype(int).to_numpy()


def _predictor(family_name: str) -> tuple[Predictor, pd.DataFrame, np.ndarray]:
    X, y = _data()
    schema = infer_schema(X)
    family = get_family(family_name)
    encoder = build_encoder(schema, family.style).fit(X)
    cats = encoder.categorical_indices_ if family.style == "native" else []
    X_valid, y_valid = _data(200, seed=1)  # early stopping keeps the booster small
    estimator = family.fit(family.portfolio(ProblemType.BINARY)[0],
                           FitData(encoder.transform(X), y, ProblemType.BINARY, 2, cats,
                                   X_valid=encoder.transform(X_valid), y_valid=y_valid))
    return (Predictor(encoder, family_name, [estimator], ProblemType.BINARY, schema.features,
                      ["No", "Yes"]), X, y)


@pytest.fixture(scope="module")
def lightgbm():
    return _predictor("lightgbm")


@pytest.fixture(scope="module")
def linear():
    return _predictor("linear")


def test_tree_shap_values_add_up_to_lightgbms_raw_output(lightgbm) -> None:
    predictor, X, _ = lightgbm
    rows = X.head(50)
    contrib = explain(predictor, rows)
    assert contrib.attrs["method"] == "tree_shap"
    assert contrib.attrs["units"] == 'log-odds of "Yes"'
    margin = np.asarray(contrib.attrs["base_value"]) + contrib.sum(axis=1).to_numpy()
    raw = predictor.estimators[0].predict(predictor.encoder.transform(rows), raw_score=True)
    assert np.allclose(margin, raw, atol=1e-6)


def test_the_report_reuses_the_tree_shap_values_for_importance_and_summary(lightgbm) -> None:
    predictor, X, y = lightgbm
    out = explanation(predictor, X, y, METRICS["AUC"], 0.5)
    imp = out["feature_importance"]
    assert imp["method"] == "tree_shap_mean_abs" and imp["units"] == 'log-odds of "Yes"'
    assert [f["feature"] for f in imp["importance"]][0] == "signal"
    shap = out["shap"]
    assert shap["method"] == "tree_shap" and shap["units"] == 'log-odds of "Yes"'
    assert shap["features"] == [f["feature"] for f in imp["importance"]]
    assert shap["rows"] == len(X) and np.shape(shap["values"]) == (len(X), 3)
    full = explain(predictor, X)
    assert np.allclose(shap["values"], full[shap["features"]].to_numpy(), atol=1e-5)
    assert shap["base_value"] == pytest.approx(np.mean(full.attrs["base_value"]))
    # the columns' own values beside the contributions, for colouring the beeswarm
    assert shap["feature_values"]["plan"] == X["plan"].tolist()
    assert shap["feature_values"]["signal"] == pytest.approx(X["signal"].tolist(), abs=1e-6)
    mean_abs = np.abs(full.to_numpy()).mean(axis=0)
    assert [f["value"] for f in imp["importance"]] == pytest.approx(sorted(mean_abs)[::-1])


def test_models_without_tree_shap_get_occlusion_in_probability_units(linear) -> None:
    predictor, X, y = linear
    out = explanation(predictor, X, y, METRICS["AUC"], 0.5)
    assert out["feature_importance"]["method"] == "permutation_AUC"
    shap = out["shap"]
    assert shap["method"] == "baseline_occlusion"
    assert shap["units"] == 'probability of "Yes"' and shap["base_value"] is None
    assert shap["rows"] == 200  # occlusion costs a prediction per column: fewer rows
    # towards the positive class on every row: a linear model's probability of "Yes"
    # rises with `signal`, so a row above the baseline (the median) gets a positive value
    j = shap["features"].index("signal")
    values = np.asarray(shap["values"])[:, j]
    signal = np.asarray(shap["feature_values"]["signal"])
    above = signal - np.median(signal)
    assert (np.sign(values[above != 0]) == np.sign(above[above != 0])).all()


def test_occlusion_of_a_whole_number_column_at_a_fractional_median() -> None:
    # a column of whole numbers whose baseline (median) is 29.5: set into a float copy,
    # not into the int column (pandas warns of that now and will refuse it later)
    X, y = _data(200)
    X["age"] = np.arange(200) % 60  # int64, median 29.5
    schema = infer_schema(X)
    family = get_family("linear")
    encoder = build_encoder(schema, family.style).fit(X)
    estimator = family.fit(family.portfolio(ProblemType.BINARY)[0],
                           FitData(encoder.transform(X), y, ProblemType.BINARY, 2, []))
    predictor = Predictor(encoder, "linear", [estimator], ProblemType.BINARY,
                          schema.features, ["No", "Yes"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = explain(predictor, X.head(20))
    assert values.attrs["method"] == "baseline_occlusion"
    assert X["age"].dtype == np.int64  # the caller's frame is untouched
    assert np.isfinite(values.to_numpy()).all()


def test_partial_dependence_is_the_average_prediction_over_the_grid(linear) -> None:
    predictor, X, _ = linear
    out = partial_dependence(predictor, X, ["signal", "plan"], rows=60)
    assert out["output"] == 'probability of "Yes"' and out["rows"] == 60
    signal, plan = out["features"]
    assert signal["numeric"] and len(signal["grid"]) == 15
    assert plan["numeric"] is False and sorted(plan["grid"]) == ["basic", "plus", "pro"]
    rows = X.iloc[np.sort(np.random.default_rng(0).choice(len(X), 60, replace=False))]
    for item, value_at in ((signal, 7), (plan, plan["grid"].index("pro"))):
        swept = rows.assign(**{item["feature"]: item["grid"][value_at]})
        expected = predictor.raw_predict(swept)[:, 1]
        curve = item["average"]['probability of "Yes"']
        assert curve[value_at] == pytest.approx(expected.mean(), abs=1e-6)
        assert np.asarray(item["ice"])[:, value_at] == pytest.approx(expected[:40], abs=1e-6)
    assert signal["average"]['probability of "Yes"'][-1] > \
        signal["average"]['probability of "Yes"'][0]


def test_partial_dependence_stops_at_its_deadline(linear) -> None:
    predictor, X, _ = linear
    out = partial_dependence(predictor, X, ["signal", "plan"], deadline=0.0)
    assert out["features"] == [] and "ran out of time before 'signal'" in out["stopped"]


def test_free_text_is_drawn_by_its_length_in_words_and_never_swept(linear) -> None:
    from tabpilot.reports import charts, html
    from tabpilot.reports.explain import free_text, word_counts

    predictor, X, _ = linear
    notes = [" ".join(["fits"] * (2 + i % 30)) + f" size {i}" for i in range(len(X))]
    assert free_text(notes) and not free_text(X["plan"].tolist())
    assert not free_text([f"T-{i}" for i in range(len(X))])  # ids: one word each
    with_text = X.assign(note=notes, ticket=[f"T-{i}" for i in range(len(X))])
    out = partial_dependence(predictor, with_text, ["note", "ticket", "plan"], rows=60)
    assert [item["feature"] for item in out["features"]] == ["plan"]
    label, axis = html._axis("note", notes)
    assert label == "words in note" and axis == word_counts(notes) and axis[0] == 4
    with warnings.catch_warnings():  # reviews as tick labels collapsed the axes
        warnings.simplefilter("error")
        assert charts.png(charts.shap_dependence(label, axis, np.zeros(len(X)), "probability"))
