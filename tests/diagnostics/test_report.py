"""The training curves chart and the diagnostics section of a candidate's insights page."""

from __future__ import annotations

import numpy as np

from tabpilot.diagnostics.rules import class_imbalance, curve_rules
from tabpilot.reports import charts
from tabpilot.reports.html import render
from tabpilot.reports.insights import model_insights
from tabpilot.tasks import ProblemType

CURVES = {"metric": "binary_logloss", "higher_is_better": False, "best_iteration": 40,
          "train": list(np.linspace(0.69, 0.2, 90)),
          "validation": list(np.concatenate([np.linspace(0.69, 0.4, 40),
                                             np.linspace(0.41, 0.45, 50)]))}


def test_training_curves_chart_draws_both_curves_and_marks_the_best_round() -> None:
    fig = charts.training_curves(CURVES["train"], CURVES["validation"], CURVES["metric"], 40)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["training"].get_xdata()) == list(range(1, 91))
    assert list(lines["validation"].get_ydata()) == CURVES["validation"]
    assert list(lines["best round (40)"].get_xdata()) == [40, 40]
    assert ax.get_ylabel() == "binary_logloss"
    only_train = charts.training_curves(CURVES["train"], [], "l2").axes[0]
    assert [line.get_label() for line in only_train.get_lines()] == ["training"]


def _insights() -> dict:
    """A regression's insights: the page with the fewest charts of its own."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    return model_insights(ProblemType.REGRESSION, y, y + 0.3 * rng.normal(size=200), None,
                          None)


def test_insights_page_shows_the_curves_and_every_rule() -> None:
    rules = [*curve_rules(CURVES), class_imbalance([180, 20], ["no", "yes"])]
    page = render("lightgbm-000", "LightGBM", _insights(),
                  {"method": "not computed", "importance": []}, curves=CURVES, rules=rules)
    assert 'id="training"' in page and 'alt="Training curves"' in page
    for r in rules:
        assert f"<td>{r['RuleConfigurationName']}</td><td>{r['RuleEvaluationStatus']}</td>" \
            in page
    assert "<td>ClassImbalance</td><td>NoIssuesFound</td>" in page  # 9 times: under 10
    plain = render("linear-001", "Linear", _insights(),
                   {"method": "not computed", "importance": []})
    assert 'id="training"' not in plain  # a candidate without diagnostics: no section
