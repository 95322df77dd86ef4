"""A self-contained insights.html: plots embedded as data: URIs, nothing from the network."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import jinja2

TEMPLATE = jinja2.Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Model insights: {{ name }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 70rem; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 32rem; margin: .5rem 1rem .5rem 0; }
</style></head><body>
<h1>Model insights: {{ name }}</h1>
<p>{{ algorithm }} &middot; {{ problem_type }} &middot; {{ rows }} validation rows
{% if threshold is not none %}&middot; decision threshold {{ "%.4f"|format(threshold) }}{% endif %}</p>
<h2>Metrics (95 % bootstrap intervals)</h2>
<table><tr><th>metric</th><th>value</th><th>lower</th><th>upper</th></tr>
{% for name, m in metrics.items() %}<tr><td>{{ name }}</td><td>{{ "%.5g"|format(m.value) }}</td>
<td>{{ "%.5g"|format(m.lower) }}</td><td>{{ "%.5g"|format(m.upper) }}</td></tr>{% endfor %}
</table>
{% for title, uri in figures %}<img alt="{{ title }}" title="{{ title }}" src="{{ uri }}">{% endfor %}
{% if confusion %}<h2>Confusion matrix (rows: actual, columns: predicted)</h2>
<table><tr><th></th>{% for l in confusion.labels %}<th>{{ l }}</th>{% endfor %}</tr>
{% for row in confusion.matrix %}<tr><th>{{ confusion.labels[loop.index0] }}</th>
{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% if per_class %}<h2>Per class</h2><table><tr><th>class</th><th>precision</th><th>recall</th>
<th>f1</th><th>support</th></tr>{% for c in per_class %}<tr><td>{{ c.label }}</td>
<td>{{ "%.4f"|format(c.precision) }}</td><td>{{ "%.4f"|format(c.recall) }}</td>
<td>{{ "%.4f"|format(c.f1) }}</td><td>{{ c.support }}</td></tr>{% endfor %}</table>{% endif %}
{% if gain_lift %}<h2>Gain and lift by decile</h2><table><tr><th>decile</th><th>rows</th>
<th>positive rate</th><th>lift</th><th>cumulative gain</th></tr>{% for g in gain_lift %}
<tr><td>{{ g.decile }}</td><td>{{ g.rows }}</td><td>{{ "%.4f"|format(g.positive_rate) }}</td>
<td>{{ "%.3f"|format(g.lift) }}</td><td>{{ "%.3f"|format(g.cumulative_gain) }}</td></tr>
{% endfor %}</table>{% endif %}
{% if outliers %}<h2>Standardized residuals beyond |3| ({{ outlier_count }})</h2><table>
<tr><th>row</th><th>actual</th><th>predicted</th><th>standardized residual</th></tr>
{% for o in outliers %}<tr><td>{{ o.row }}</td><td>{{ "%.5g"|format(o.actual) }}</td>
<td>{{ "%.5g"|format(o.predicted) }}</td><td>{{ "%.3f"|format(o.standardized_residual) }}</td>
</tr>{% endfor %}</table>{% endif %}
<h2>Feature importance ({{ importance.method }})</h2>
<table><tr><th>feature</th><th>importance</th></tr>{% for f in importance.importance %}
<tr><td>{{ f.feature }}</td><td>{{ "%.5g"|format(f.value) }}</td></tr>{% endfor %}</table>
<script type="application/json" id="insights">{{ data_json|safe }}</script>
</body></html>""", autoescape=True)


def _figure_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _figures(insights: dict[str, Any], importance: dict[str, Any]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs: list[tuple[str, str]] = []

    def plot(title: str, xs, ys, xlabel: str, ylabel: str, diagonal: bool = False,
             kind: str = "line") -> None:
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        if kind == "scatter":
            ax.scatter(xs, ys, s=4, alpha=0.5)
        elif kind == "bar":
            ax.barh(xs, ys)
            ax.invert_yaxis()
        else:
            ax.plot(xs, ys, marker="." if len(xs) < 20 else None)
        if diagonal:
            lo, hi = min(min(xs), min(ys)), max(max(xs), max(ys))
            ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        figs.append((title, _figure_uri(fig)))

    if "binary" in insights:
        b = insights["binary"]
        plot("ROC curve", b["roc_curve"]["fpr"], b["roc_curve"]["tpr"], "false positive rate",
             "true positive rate", diagonal=True)
        pr = b["precision_recall_curve"]
        plot("Precision-recall curve", pr["recall"], pr["precision"], "recall", "precision")
        cal = b["calibration"]
        if cal["mean_predicted"]:
            plot("Calibration", cal["mean_predicted"], cal["fraction_positive"],
                 "mean predicted probability", "fraction positive", diagonal=True)
    if "regression" in insights:
        r = insights["regression"]
        avp = r["actual_vs_predicted"]
        plot("Actual vs predicted", avp["predicted"], avp["actual"], "predicted", "actual",
             diagonal=True, kind="scatter")
        residuals = [a - p for a, p in zip(avp["actual"], avp["predicted"], strict=True)]
        plot("Residuals vs predicted", avp["predicted"], residuals, "predicted", "residual",
             kind="scatter")
        h = r["residual_histogram"]
        plot("Residual histogram", h["edges"][:-1], h["counts"], "residual", "rows")
    top = importance["importance"][:15]
    if top:
        plot("Feature importance", [f["feature"] for f in top], [f["value"] for f in top],
             importance["method"], "", kind="bar")
    return figs


def render(name: str, algorithm: str, insights: dict[str, Any], importance: dict[str, Any]
           ) -> str:
    binary = insights.get("binary", {})
    multi = insights.get("multiclass", {})
    reg = insights.get("regression", {})
    data = {"insights": insights, "importance": importance}
    return TEMPLATE.render(
        name=name, algorithm=algorithm, problem_type=insights["problem_type"],
        rows=insights["rows"], threshold=binary.get("threshold"),
        metrics=insights["metrics"], figures=_figures(insights, importance),
        confusion=binary.get("confusion_matrix") or multi.get("confusion_matrix"),
        per_class=multi.get("per_class"), gain_lift=binary.get("gain_lift"),
        outliers=reg.get("standardized_residual_outliers"),
        outlier_count=reg.get("outlier_count"), importance=importance,
        data_json=json.dumps(data).replace("</", "<\\/"))
