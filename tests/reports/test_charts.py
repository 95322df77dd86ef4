"""The charts (reports/charts.py) on known data: the numbers they print are the numbers
scikit-learn computes, and every chart renders to PNG and SVG."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from sklearn import metrics as skm

from tabpilot.reports import charts
from tabpilot.reports.insights import model_insights
from tabpilot.tasks import ProblemType


def _binary(n: int = 800, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.3 + 0.35 * y + rng.normal(0, 0.25, n), 0.001, 0.999)
    return y, np.column_stack([1 - p, p])


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _legend(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


@pytest.fixture(scope="module")
def binary():
    y, proba = _binary()
    return y, proba, model_insights(ProblemType.BINARY, y, proba, ["No", "Yes"], 0.5)["binary"]


def test_the_roc_legend_holds_scikit_learns_auc(binary) -> None:
    y, proba, b = binary
    auc = skm.roc_auc_score(y, proba[:, 1])
    assert b["roc_auc"] == pytest.approx(auc, abs=1e-12)  # on every row, not the drawn curve
    fig = charts.roc(b["roc_curve"]["fpr"], b["roc_curve"]["tpr"], b["roc_auc"], "Yes")
    assert f"model (AUC = {auc:.3f})" in _legend(fig)
    assert "positive: Yes" in fig.axes[0].get_title()


def test_the_precision_recall_legend_holds_the_average_precision(binary) -> None:
    y, proba, b = binary
    ap = skm.average_precision_score(y, proba[:, 1])
    assert b["average_precision"] == pytest.approx(ap, abs=1e-12)
    pr = b["precision_recall_curve"]
    fig = charts.precision_recall(pr["recall"], pr["precision"], b["average_precision"],
                                  b["positive_rate"])
    legend = _legend(fig)
    assert f"model (AP = {ap:.3f})" in legend
    assert f"no skill ({y.mean():.3f})" in legend


def test_the_confusion_heat_map_cells_are_scikit_learns_counts_and_row_rates(binary) -> None:
    y, proba, b = binary
    expected = skm.confusion_matrix(y, (proba[:, 1] >= 0.5).astype(int))
    fig = charts.confusion(b["confusion_matrix"]["labels"], b["confusion_matrix"]["matrix"])
    cells = [t.split("\n") for t in _texts(fig)]
    assert [int(c[0]) for c in cells] == expected.ravel().tolist()
    rates = expected / expected.sum(axis=1, keepdims=True)
    assert [c[1] for c in cells] == [f"{r:.1%}" for r in rates.ravel()]
    # the shading is the row rate: the diagonal reads as each class's recall
    shaded = fig.axes[0].images[0].get_array()
    assert np.allclose(np.diag(shaded), skm.recall_score(y, proba[:, 1] >= 0.5, average=None))


def test_many_classes_keep_every_label_whole() -> None:
    labels = [f"a rather long class name number {i}" for i in range(12)]
    matrix = np.eye(12, dtype=int) * 5 + 1
    fig = charts.confusion(labels, matrix.tolist())
    ticks = [t.get_text().replace("\n", " ") for t in fig.axes[0].get_yticklabels()]
    assert ticks == labels
    assert [int(t) for t in _texts(fig)] == matrix.ravel().tolist()


def test_gain_and_lift_charts_draw_the_table(binary) -> None:
    _, _, b = binary
    gl = b["gain_lift"]
    gain = charts.cumulative_gain(gl)
    x, y = gain.axes[0].lines[0].get_data()
    assert x[0] == 0 and x[-1] == pytest.approx(100) and y[-1] == pytest.approx(100)
    assert np.allclose(y[1:], [100 * g["cumulative_gain"] for g in gl])
    lift = charts.lift(gl)
    heights = [p.get_height() for p in lift.axes[0].patches]
    assert heights == pytest.approx([g["lift"] for g in gl])


def test_importance_labels_say_what_the_numbers_are() -> None:
    assert charts.importance_label("permutation_AUC") == "Permutation importance (drop in AUC)"
    assert charts.importance_label("tree_shap_mean_abs", 'log-odds of "Yes"') == \
        'Mean |SHAP value| (log-odds of "Yes")'
    fig = charts.importance(["a" * 70, "b"], [0.5, 0.1], "Permutation importance (drop in AUC)")
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks[0].replace("\n", "") == "a" * 70  # wrapped, never cut
    assert fig.axes[0].get_xlabel() == "Permutation importance (drop in AUC)"


def test_every_chart_renders_to_png() -> None:
    rng = np.random.default_rng(1)
    actual = rng.normal(size=200)
    predicted = actual + rng.normal(0, 0.3, 200)
    values = rng.normal(size=(50, 2))
    figures = [
        charts.calibration([0.1, 0.5, 0.9], [0.12, 0.45, 0.93], "Yes"),
        charts.actual_vs_predicted(actual, predicted),
        charts.residuals_vs_predicted(actual, predicted),
        charts.residual_histogram(np.linspace(-1, 1, 11), rng.integers(0, 9, 10)),
        charts.per_class([{"label": "x", "precision": .9, "recall": .8, "f1": .85},
                          {"label": "y", "precision": .7, "recall": .6, "f1": .65}]),
        charts.shap_summary(["num", "cat"], values,
                            {"num": rng.normal(size=50).tolist(),
                             "cat": rng.choice(["a", "b", None], 50).tolist()},
                            'log-odds of "Yes"'),
        charts.shap_dependence("cat", rng.choice(["a", "b"], 50).tolist(), values[:, 1],
                               "probability", "baseline_occlusion"),
        charts.partial_dependence("num", [0.0, 1.0, 2.0], {"p": [0.1, 0.2, 0.4]},
                                  [[0.1, 0.2, 0.3], [0.2, 0.3, 0.5]], "probability", True),
        charts.partial_dependence("cat", ["a", "b"], {"x": [0.2, 0.3], "y": [0.8, 0.7]},
                                  None, "probability of each class", False),
        charts.target_by_group("plan", [{"group": "a", "rows": 10, "mean": 1.0, "q25": 0.5,
                                         "median": 1.0, "q75": 1.5}],
                               {"mean": 0.8, "q25": 0, "median": 1, "q75": 2}, "regression"),
    ]
    for fig in figures:
        uri = charts.data_uri(fig)
        assert base64.b64decode(uri.removeprefix("data:image/png;base64,")).startswith(
            b"\x89PNG")
    assert charts.svg(figures[0]).startswith("<svg")
    titles = [f.axes[0].get_title() for f in figures]
    assert "Occlusion dependence: cat" in titles and "SHAP summary: each dot a row" in titles
