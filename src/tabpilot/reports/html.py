"""A candidate's two self-contained pages, charts embedded as data: URIs, nothing from the
network: insights.html (ModelInsights: metrics, ROC / PR, confusion heat map, calibration,
gain and lift, or the regression errors; importance) and explanations.html
(Explainability: importance, SHAP summary, dependence and partial dependence / ICE).

Every chart comes from reports/charts.py (the one place charts are drawn); this module
only chooses which ones a page shows, in what order, and the words around them. Charts
fill the page: two side by side on a wide screen, wide ones across.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jinja2

from tabpilot.models.base import CURVE_TRAIN_ROWS
from tabpilot.reports import charts
from tabpilot.reports.explain import CURVE_FEATURES, free_text, word_counts

TEMPLATE = jinja2.Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ heading }}: {{ name }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; padding: 0 1.5rem;
       color: #222; max-width: 84rem; line-height: 1.45; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
p.note { color: #555; max-width: 60rem; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(30rem, 1fr));
          gap: 1rem 1.5rem; align-items: start; }
.charts figure { margin: 0; } .charts .wide { grid-column: 1 / -1; }
.charts img { width: 100%; height: auto; display: block; }
figcaption { color: #555; font-size: .9rem; margin-top: .2rem; }
nav a { margin-right: 1rem; }
details summary { cursor: pointer; color: #1f6fb2; margin: .5rem 0; }
</style></head><body>
<h1>{{ heading }}: {{ name }}</h1>
<p>{{ algorithm }} &middot; {{ problem_type }} &middot; {{ rows }} validation rows
{% if threshold is not none %}&middot; decision threshold {{ "%.4f"|format(threshold) }}{% endif %}
{% if positive is not none %}&middot; positive class <b>{{ positive }}</b>{% endif %}</p>
<nav>{% for s in sections %}<a href="#{{ s.id }}">{{ s.title }}</a>{% endfor %}
{% if other %}&middot; <a href="{{ other.href }}">{{ other.title }}</a>{% endif %}</nav>
{% if metrics %}<h2 id="metrics">Metrics (95 % bootstrap intervals)</h2>
<table><tr><th>metric</th><th>value</th><th>lower</th><th>upper</th></tr>
{% for name, m in metrics.items() %}<tr><td>{{ name }}</td><td>{{ "%.5g"|format(m.value) }}</td>
<td>{{ "%.5g"|format(m.lower) }}</td><td>{{ "%.5g"|format(m.upper) }}</td></tr>{% endfor %}
</table>{% endif %}
{% for s in sections %}
<h2 id="{{ s.id }}">{{ s.title }}</h2>
{% if s.note %}<p class="note">{{ s.note }}</p>{% endif %}
{% if s.figures %}<div class="charts">{% for f in s.figures %}
<figure class="{{ 'wide' if f.wide else '' }}"><img alt="{{ f.title }}" title="{{ f.title }}"
src="{{ f.uri }}">{% if f.caption %}<figcaption>{{ f.caption }}</figcaption>{% endif %}</figure>
{% endfor %}</div>{% endif %}
{% if s.table %}<details{% if s.open %} open{% endif %}><summary>{{ s.table.summary }}</summary>
<table><tr>{% for h in s.table.header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in s.table.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table></details>{% endif %}
{% endfor %}
<script type="application/json" id="insights">{{ data_json|safe }}</script>
</body></html>""", autoescape=True)

EXPLANATIONS_PAGE = "explanations.html"  # beside insights.html in the candidate's folder
INSIGHTS_PAGE = "insights.html"


METHOD_WORDS = {
    "tree_shap": "exact TreeSHAP from the model's own library (LightGBM pred_contrib, XGBoost "
                 "pred_contribs, CatBoost ShapValues), summed over the encoded columns each "
                 "raw column produced",
    "baseline_occlusion": "baseline occlusion (this model has no exact TreeSHAP): each value "
                          "is the change in the prediction when the column is set to its "
                          "typical value (median or most frequent), an approximation of SHAP",
}


def _figure(title: str, draw: Callable[..., Any], *args: Any, wide: bool = False,
            caption: str | None = None, **kwargs: Any) -> dict[str, Any]:
    return {"title": title, "uri": charts.data_uri(draw(*args, **kwargs)), "wide": wide,
            "caption": caption}



def _binary(b: dict[str, Any]) -> list[dict[str, Any]]:
    pos = b.get("positive_class")
    roc, pr, cal = b["roc_curve"], b["precision_recall_curve"], b["calibration"]
    auc = b.get("roc_auc", float("nan"))
    ap = b.get("average_precision", float("nan"))
    out = [{"id": "ranking", "title": "Ranking: ROC and precision-recall",
            "note": f"ROC AUC {auc:.4f}, average precision {ap:.4f}, both on every validation "
                    "row; the curves are drawn through up to 101 of their points.",
            "figures": [
                _figure("ROC curve", charts.roc, roc["fpr"], roc["tpr"], auc, pos),
                _figure("Precision-recall curve", charts.precision_recall, pr["recall"],
                        pr["precision"], ap, b.get("positive_rate", float("nan")), pos)]}]
    cm = b["confusion_matrix"]
    figures = [_figure("Confusion matrix", charts.confusion, cm["labels"], cm["matrix"])]
    if cal["mean_predicted"]:
        figures.append(_figure("Calibration", charts.calibration, cal["mean_predicted"],
                               cal["fraction_positive"], pos))
    out.append({"id": "decisions", "title": "Decisions and calibration",
                "note": f"At the decision threshold {b['threshold']:.4f}. Each cell holds its "
                        "row count and its share of the actual class, so the diagonal is each "
                        "class's recall. Calibration compares the predicted probability with "
                        "the observed share of positives.",
                "figures": figures})
    gl = b["gain_lift"]
    out.append({"id": "gain", "title": "Gain and lift",
                "note": "Rows ranked by predicted probability, highest first, in ten equal "
                        "parts: how many of all positives the top parts hold, and how much "
                        "richer in positives each part is than the whole.",
                "figures": [_figure("Cumulative gain", charts.cumulative_gain, gl),
                            _figure("Lift by decile", charts.lift, gl)],
                "table": {"summary": "gain and lift table", "header": [
                    "decile", "rows", "positive rate", "lift", "cumulative gain"],
                    "rows": [[g["decile"], g["rows"], f"{g['positive_rate']:.4f}",
                              f"{g['lift']:.3f}", f"{g['cumulative_gain']:.3f}"] for g in gl]}})
    return out


def _multiclass(m: dict[str, Any]) -> list[dict[str, Any]]:
    cm = m["confusion_matrix"]
    many = len(cm["labels"]) > 6
    return [{"id": "decisions", "title": "Confusion matrix and per-class scores",
             "note": "Each cell holds its row count and its share of the actual class (the "
                     "diagonal is each class's recall).",
             "figures": [_figure("Confusion matrix", charts.confusion, cm["labels"],
                                 cm["matrix"], wide=many),
                         _figure("Per-class scores", charts.per_class, m["per_class"],
                                 wide=many)],
             "table": {"summary": "per-class table", "header": [
                 "class", "precision", "recall", "f1", "support"],
                 "rows": [[c["label"], f"{c['precision']:.4f}", f"{c['recall']:.4f}",
                           f"{c['f1']:.4f}", c["support"]] for c in m["per_class"]]}}]


def _regression(r: dict[str, Any]) -> list[dict[str, Any]]:
    avp, h = r["actual_vs_predicted"], r["residual_histogram"]
    out = [{"id": "errors", "title": "Errors",
            "note": f"Residual standard deviation {r['residual_std']:.5g}; the scatter plots "
                    f"show up to {len(avp['actual'])} validation rows.",
            "figures": [
                _figure("Actual against predicted", charts.actual_vs_predicted,
                        avp["actual"], avp["predicted"]),
                _figure("Residuals against predicted", charts.residuals_vs_predicted,
                        avp["actual"], avp["predicted"]),
                _figure("Residual histogram", charts.residual_histogram, h["edges"],
                        h["counts"])]}]
    if r.get("standardized_residual_outliers"):
        out[0]["table"] = {
            "summary": f"standardized residuals beyond |3| ({r['outlier_count']} rows)",
            "header": ["row", "actual", "predicted", "standardized residual"],
            "rows": [[o["row"], f"{o['actual']:.5g}", f"{o['predicted']:.5g}",
                      f"{o['standardized_residual']:.3f}"]
                     for o in r["standardized_residual_outliers"]]}
    return out


def _training(curves: dict[str, Any] | None, rules: list[dict[str, str]]) -> dict[str, Any]:
    """Training diagnostics: the loss per round (first fit under k-fold) and the
    Debugger-style rule results with their reasons."""
    section: dict[str, Any] = {"id": "training", "title": "Training diagnostics",
                               "note": "Debugger-style rules on this candidate's training."}
    if curves and curves.get("train"):
        section["note"] += (" The curves are the first fit's loss per round; the training "
                            f"curve on at most {CURVE_TRAIN_ROWS:,} training rows.")
        section["figures"] = [_figure("Training curves", charts.training_curves,
                                      curves["train"], curves.get("validation") or [],
                                      curves.get("metric", "loss"),
                                      curves.get("best_iteration"))]
    if rules:
        section["open"] = True
        section["table"] = {"summary": f"{len(rules)} rules", "header": ["rule", "status", "why"],
                            "rows": [[r["RuleConfigurationName"], r["RuleEvaluationStatus"],
                                      r["StatusDetails"]] for r in rules]}
    return section


def _importance(importance: dict[str, Any], chart: bool = True) -> dict[str, Any]:
    """The importance section: its chart (the Explainability page), or only its table with
    a pointer to that page (ModelInsights: one chart fewer to draw in its time share)."""
    label = charts.importance_label(importance["method"], importance.get("units"))
    rows = importance["importance"]
    section: dict[str, Any] = {"id": "importance", "title": "Feature importance",
                               "note": f"On the raw input columns. {label}."}
    if rows:
        if chart:
            section["figures"] = [_figure(label, charts.importance,
                                          [f["feature"] for f in rows],
                                          [f["value"] for f in rows], label, wide=True)]
        else:
            section["note"] += (f" Charted, with how each column moves each row's "
                                f"prediction, in {EXPLANATIONS_PAGE}.")
            section["open"] = True
        section["table"] = {"summary": f"all {len(rows)} columns", "header": ["feature", label],
                            "rows": [[f["feature"], f"{f['value']:.5g}"] for f in rows]}
    else:
        section["note"] = "Not computed for this candidate (no time left in the report share)."
    return section


MAX_WORD_CHARTS = 6  # classes whose top words are charted (all are in the table)


def _word_chart(label: str, found: list[dict[str, Any]]) -> Any:
    return charts.importance([w["word"] for w in found], [w["weight"] for w in found],
                             f'mean drop in the probability of "{label}"',
                             title=f'Words towards "{label}"')


def _words(text: dict[str, Any]) -> dict[str, Any]:
    """A text model's section: the words that weigh most towards each class
    (tabpilot/text/explain.py), a chart per class and one table of them all."""
    classes = text.get("classes") or {}
    section: dict[str, Any] = {
        "id": "words", "title": "Words that weigh most per class",
        "note": (f"Word occlusion on {text.get('rows', 0)} documents of the column "
                 f"{text.get('column')!r}: each weight is the {text.get('units')}; words in "
                 f"fewer than {text.get('min_rows', 2)} documents are left out. "
                 f"{text.get('stopped', '')}").strip()}
    figures = [_figure(f'towards "{label}"', _word_chart, label, found)
               for label, found in list(classes.items())[:MAX_WORD_CHARTS] if found]
    if figures:
        section["figures"] = figures
    section["open"] = True
    section["table"] = {"summary": "every class's words",
                        "header": ["class", "words (weight, documents)"],
                        "rows": [[label, ", ".join(f"{w['word']} ({w['weight']:.3g}, "
                                                    f"{w['rows']})" for w in found) or "none"]
                                 for label, found in classes.items()]}
    return section


def _axis(feature: str, values: list[Any]) -> tuple[str, list[Any]]:
    """A dependence plot's x axis: the column's values, or free text's lengths in words."""
    return (f"words in {feature}", word_counts(values)) if free_text(values) else (feature, values)


def _contributions(shap: dict[str, Any]) -> list[dict[str, Any]]:
    method, units = shap["method"], shap["units"]
    word = "SHAP values" if method == "tree_shap" else "Occlusion contributions"
    base = (f" The base value (the average output before any column's contribution) is "
            f"{shap['base_value']:.4g} {units}." if shap.get("base_value") is not None else "")
    note = (f"{word} of the top {len(shap['features'])} columns on {shap['rows']} validation "
            f"rows, in {units}; made by {METHOD_WORDS.get(method, method)}.{base} A positive "
            "value pushes the prediction up.")
    values = shap["values"]
    dependence = [_figure(f"{word}: {f}", charts.shap_dependence, *_axis(f, shap["feature_values"][f]),
                          [row[j] for row in values], units, method)
                  for j, f in enumerate(shap["features"][:CURVE_FEATURES])]
    return [{"id": "shap", "title": "SHAP summary" if method == "tree_shap"
             else "Per-row contributions", "note": note,
             "figures": [_figure(f"{word} summary", charts.shap_summary, shap["features"],
                                 values, shap["feature_values"], units, method, wide=True)]},
            {"id": "dependence", "title": "Dependence plots",
             "note": "Each top column's contribution against its value, one dot per row.",
             "figures": dependence}]


def _partial_dependence(pd_: dict[str, Any]) -> dict[str, Any]:
    figures = [_figure(f"Partial dependence: {f['feature']}", charts.partial_dependence,
                       f["feature"], f["grid"], f["average"], f.get("ice"), pd_["output"],
                       f["numeric"]) for f in pd_["features"]
               if f["numeric"] or not free_text(f["grid"])]  # reports made before free_text
    note = (f"The {pd_['output']} as one column sweeps its values with every other column "
            f"kept, on {pd_['rows']} validation rows: the thick line is their average "
            "(partial dependence), thin lines single rows (ICE).")
    if pd_.get("stopped"):
        note += f" {pd_['stopped']}."
    return {"id": "pdp", "title": "Partial dependence and ICE", "note": note,
            "figures": figures}


def render(name: str, algorithm: str, insights: dict[str, Any], importance: dict[str, Any],
           explanations_page: bool = False, curves: dict[str, Any] | None = None,
           rules: list[dict[str, str]] | None = None, words: dict[str, Any] | None = None
           ) -> str:
    """The ModelInsights page: metrics, the problem type's charts, the importance, a text
    model's top words per class (`words`), and the training curves and rule results when
    the candidate has them (diagnostics/); it links to the Explainability page
    (explanations.html) when there is one."""
    binary = insights.get("binary", {})
    sections: list[dict[str, Any]] = []
    if binary:
        sections += _binary(binary)
    if "multiclass" in insights:
        sections += _multiclass(insights["multiclass"])
    if "regression" in insights:
        sections += _regression(insights["regression"])
    sections.append(_importance(importance, chart=not explanations_page))
    if words:
        sections.append(_words(words))
    if curves or rules:
        sections.append(_training(curves, rules or []))
    data = {"insights": insights, "importance": importance}
    return TEMPLATE.render(
        heading="Model insights", name=name, algorithm=algorithm,
        problem_type=insights["problem_type"], rows=insights["rows"],
        threshold=binary.get("threshold"), positive=binary.get("positive_class"),
        metrics=insights["metrics"], sections=sections,
        other={"href": EXPLANATIONS_PAGE,
               "title": "Explanations: SHAP summary, dependence, partial dependence"}
        if explanations_page else None,
        data_json=json.dumps(data).replace("</", "<\\/"))


def render_explanations(name: str, explained: dict[str, Any]) -> str:
    """The Explainability page, from explanations.json: importance on the raw columns, the
    SHAP summary (or occlusion where the model has no TreeSHAP), dependence plots and
    partial dependence / ICE of the top columns, each saying its method and units."""
    importance = explained["feature_importance"]
    sections = [_importance(importance)]
    if explained.get("text"):
        sections.append(_words(explained["text"]))
    shap, dependence = explained.get("shap"), explained.get("partial_dependence")
    if shap and shap.get("features"):
        sections += _contributions(shap)
    if dependence and dependence.get("features"):
        sections.append(_partial_dependence(dependence))
    data = {key: explained.get(key) for key in ("feature_importance", "partial_dependence")}
    return TEMPLATE.render(
        heading="Explanations", name=name, algorithm=explained.get("algorithm", ""),
        problem_type=explained.get("problem_type", ""), rows=explained.get("rows", 0),
        threshold=None, positive=None, metrics=None, sections=sections,
        other={"href": INSIGHTS_PAGE, "title": "Model insights: metrics and charts"},
        data_json=json.dumps(data).replace("</", "<\\/"))
