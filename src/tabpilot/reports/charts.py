"""Every chart tabpilot draws, in one place: the candidate reports (insights.html), the
DataExploration notebook and any future page that shows a candidate draw through here.

Each chart is a function from plain data (lists, arrays, the dicts insights.json and
explanations.json hold) to a matplotlib `Figure`, so whoever shows it chooses the form:
`png`/`data_uri` for a self-contained HTML page, `svg` for inline vector graphics, or the
figure itself in a notebook. Figures are built with `matplotlib.figure.Figure`, not pyplot:
no global state, safe from threads (a server), and nothing to close.

The shared look (font sizes, grid, one colour per meaning) lives in STYLE and the colour
constants, so a chart drawn here reads the same wherever it is shown.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

STYLE = {
    "font.size": 11, "axes.titlesize": 13, "axes.titleweight": "bold", "axes.labelsize": 11,
    "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
    "axes.spines.right": False, "figure.facecolor": "white",
}
MAIN, SECOND, CHANCE = "#1f6fb2", "#d9822b", "#8a8a8a"
# SHAP's habit: low feature values blue, high ones red
LOW_HIGH = LinearSegmentedColormap.from_list("low_high", ["#1f77d0", "#9b59b6", "#e8384f"])
NARROW = (6.4, 4.6)  # half the page: two side by side
WIDE = (12.0, 4.8)  # the page's width
MAX_LABEL = 40  # characters of a tick label; longer ones are wrapped, never cut


def _chart(draw: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw under the shared style without touching the caller's matplotlib settings."""

    @functools.wraps(draw)
    def wrapped(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(STYLE):
            fig = draw(*args, **kwargs)
            for ax in fig.axes:  # a fixed title place: matplotlib's search for one costs a
                if ax.get_title():  # quarter of the drawing
                    ax.set_title(ax.get_title(), y=1.01)
            return fig
    return wrapped


def _figure(size: tuple[float, float] = NARROW, fit: bool = True) -> tuple[Figure, Any]:
    """A figure with one axes. `fit` lays it out around its labels (long or rotated tick
    labels); without it, fixed margins that short numeric ticks fit in, at half the cost."""
    if fit:
        fig = Figure(figsize=size, layout="constrained")
    else:
        fig = Figure(figsize=size)
        fig.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.91)
    return fig, fig.add_subplot()


def wrap(label: Any, width: int = MAX_LABEL) -> str:
    """A label on lines of at most `width` characters: long names wrap, they are not cut."""
    import textwrap

    text = str(label)
    return "\n".join(textwrap.wrap(text, width, break_long_words=True)) or text


def png(fig: Figure, dpi: int = 96) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def data_uri(fig: Figure, dpi: int = 96) -> str:
    """The figure as a PNG data: URI, for HTML that loads nothing from the network."""
    return "data:image/png;base64," + base64.b64encode(png(fig, dpi)).decode()


def svg(fig: Figure) -> str:
    """The figure as an inline <svg> element (text kept as paths: no fonts needed)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg"):]


# -- classification -----------------------------------------------------------------------

@_chart
def roc(fpr: Sequence[float], tpr: Sequence[float], auc: float, positive: Any = None
        ) -> Figure:
    """ROC curve with its area in the legend (the area computed on every row, by the caller)."""
    fig, ax = _figure(fit=False)
    ax.plot(fpr, tpr, color=MAIN, linewidth=2, label=f"model (AUC = {auc:.3f})")
    ax.plot([0, 1], [0, 1], color=CHANCE, linestyle="--", linewidth=1, label="chance (0.5)")
    ax.fill_between(fpr, tpr, alpha=0.08, color=MAIN)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate",
           ylabel="true positive rate (recall)",
           title="ROC curve" + (f" (positive: {positive})" if positive is not None else ""))
    ax.legend(loc="lower right")
    return fig


@_chart
def precision_recall(recall: Sequence[float], precision: Sequence[float],
                     average_precision: float, base_rate: float, positive: Any = None
                     ) -> Figure:
    """Precision-recall curve with its average precision; a no-skill line at the base rate."""
    fig, ax = _figure(fit=False)
    ax.plot(recall, precision, color=MAIN, linewidth=2,
            label=f"model (AP = {average_precision:.3f})")
    ax.axhline(base_rate, color=CHANCE, linestyle="--", linewidth=1,
               label=f"no skill ({base_rate:.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall", ylabel="precision",
           title="Precision-recall curve" + (f" (positive: {positive})"
                                             if positive is not None else ""))
    ax.legend(loc="lower left")
    return fig


@_chart
def confusion(labels: Sequence[Any], matrix: Sequence[Sequence[int]]) -> Figure:
    """Confusion matrix as a heat map: each cell's count and its share of the actual class
    (the row), shaded by that share, so the diagonal reads as each class's recall."""
    counts = np.asarray(matrix, dtype=float)
    k = len(labels)
    rates = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    side = min(12.0, 3.2 + 0.7 * k)
    fig, ax = _figure((side + 1.2, side))
    ax.grid(False)
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    small = k > 8
    for i in range(k):
        for j in range(k):
            text = f"{int(counts[i, j])}" if small else \
                f"{int(counts[i, j])}\n{rates[i, j]:.1%}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8 if small else 11,
                    color="white" if rates[i, j] > 0.55 else "#222")
    names = [wrap(v, 18) for v in labels]
    ax.set_xticks(range(k), names, rotation=45 if k > 3 else 0,
                  ha="right" if k > 3 else "center")
    ax.set_yticks(range(k), names)
    ax.set(xlabel="predicted", ylabel="actual",
           title="Confusion matrix (count, share of the actual class)")
    fig.colorbar(im, ax=ax, label="share of the actual class (row)", shrink=0.8)
    return fig


@_chart
def cumulative_gain(gain_lift: Sequence[dict[str, Any]]) -> Figure:
    """Share of all positives captured by the top x % of rows ranked by the model."""
    fig, ax = _figure(fit=False)
    total = sum(g["rows"] for g in gain_lift) or 1
    share = np.cumsum([0] + [g["rows"] for g in gain_lift]) / total
    gain = [0.0] + [g["cumulative_gain"] for g in gain_lift]
    ax.plot(share * 100, np.asarray(gain) * 100, marker="o", color=MAIN, linewidth=2,
            label="model")
    ax.plot([0, 100], [0, 100], color=CHANCE, linestyle="--", linewidth=1, label="random")
    ax.set(xlim=(0, 100), ylim=(0, 101), xlabel="rows contacted, highest scores first (%)",
           ylabel="positives captured (%)", title="Cumulative gain")
    ax.legend(loc="lower right")
    return fig


@_chart
def lift(gain_lift: Sequence[dict[str, Any]]) -> Figure:
    """Lift per decile: its positive rate over the overall rate (1 = no better than random)."""
    fig, ax = _figure(fit=False)
    deciles = [g["decile"] for g in gain_lift]
    values = [g["lift"] for g in gain_lift]
    bars = ax.bar(deciles, values, color=MAIN)
    ax.bar_label(bars, [f"{v:.2f}" for v in values], fontsize=9, padding=2)
    ax.axhline(1.0, color=CHANCE, linestyle="--", linewidth=1, label="random (1.0)")
    ax.set_xticks(deciles)
    ax.set(xlabel="decile (1 = highest scores)", ylabel="lift",
           title="Lift by decile")
    ax.margins(y=0.12)
    ax.legend(loc="upper right")
    return fig


@_chart
def calibration(mean_predicted: Sequence[float], fraction_positive: Sequence[float],
                positive: Any = None) -> Figure:
    """Reliability diagram: in each probability bin, the observed positive share."""
    fig, ax = _figure(fit=False)
    ax.plot([0, 1], [0, 1], color=CHANCE, linestyle="--", linewidth=1,
            label="perfectly calibrated")
    ax.plot(mean_predicted, fraction_positive, marker="o", color=MAIN, linewidth=2,
            label="model")
    what = f' "{positive}"' if positive is not None else ""
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel=f"mean predicted probability of{what}",
           ylabel="observed share", title="Calibration (10 bins)")
    ax.legend(loc="upper left")
    return fig


@_chart
def per_class(rows: Sequence[dict[str, Any]]) -> Figure:
    """Precision, recall and F1 per class, grouped bars."""
    labels = [wrap(r["label"], 18) for r in rows]
    x = np.arange(len(rows))
    width = 0.27
    fig, ax = _figure((max(NARROW[0], 1.0 + 0.6 * len(rows)), NARROW[1]))
    for i, (key, colour) in enumerate((("precision", MAIN), ("recall", SECOND),
                                       ("f1", "#3a9d5d"))):
        ax.bar(x + (i - 1) * width, [r[key] for r in rows], width, label=key, color=colour)
    ax.set_xticks(x, labels, rotation=45 if len(rows) > 4 else 0,
                  ha="right" if len(rows) > 4 else "center")
    ax.set(ylim=(0, 1.05), ylabel="score", title="Precision, recall and F1 per class")
    ax.legend(loc="lower right", ncols=3)
    return fig


# -- regression ---------------------------------------------------------------------------

@_chart
def actual_vs_predicted(actual: Sequence[float], predicted: Sequence[float]) -> Figure:
    fig, ax = _figure(fit=False)
    a, p = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    ax.scatter(p, a, s=8, alpha=0.45, color=MAIN, linewidths=0)
    lo, hi = float(min(a.min(), p.min())), float(max(a.max(), p.max()))
    ax.plot([lo, hi], [lo, hi], color=CHANCE, linestyle="--", linewidth=1, label="actual = predicted")
    ax.set(xlabel="predicted", ylabel="actual", title="Actual against predicted")
    ax.legend(loc="upper left")
    return fig


@_chart
def residuals_vs_predicted(actual: Sequence[float], predicted: Sequence[float]) -> Figure:
    fig, ax = _figure(fit=False)
    a, p = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    ax.scatter(p, a - p, s=8, alpha=0.45, color=MAIN, linewidths=0)
    ax.axhline(0, color=CHANCE, linestyle="--", linewidth=1)
    ax.set(xlabel="predicted", ylabel="residual (actual - predicted)",
           title="Residuals against predicted")
    return fig


@_chart
def residual_histogram(edges: Sequence[float], counts: Sequence[int]) -> Figure:
    fig, ax = _figure(fit=False)
    e = np.asarray(edges, dtype=float)
    ax.bar(e[:-1], counts, width=np.diff(e), align="edge", color=MAIN, edgecolor="white")
    ax.axvline(0, color=CHANCE, linestyle="--", linewidth=1)
    ax.set(xlabel="residual (actual - predicted)", ylabel="rows", title="Residual histogram")
    return fig


# -- explanations -------------------------------------------------------------------------

def importance_label(method: str, units: str | None = None) -> str:
    """What an importance method's numbers are, in words (never the raw key)."""
    if method.startswith("permutation_"):
        return f"Permutation importance (drop in {method.removeprefix('permutation_')})"
    if method == "tree_shap_mean_abs":
        return "Mean |SHAP value|" + (f" ({units})" if units else "")
    if method == "baseline_occlusion_mean_abs":
        return "Mean |change when set to its typical value|" + (f" ({units})" if units else "")
    return method.replace("_", " ")


@_chart
def importance(features: Sequence[str], values: Sequence[float], label: str, top: int = 20,
               title: str = "Feature importance") -> Figure:
    """Horizontal bars, most important on top; the axis says what the numbers are (also a
    text model's words towards a class, with their own `title`)."""
    names, vals = list(features)[:top], list(values)[:top]
    fig, ax = _figure((WIDE[0], max(2.5, 0.9 + 0.36 * len(names))))
    bars = ax.barh([wrap(n) for n in names], vals, color=MAIN)
    ax.bar_label(bars, [f"{v:.3g}" for v in vals], fontsize=9, padding=3)
    ax.invert_yaxis()
    ax.margins(x=0.12)
    ax.grid(axis="y", visible=False)
    ax.set(xlabel=label, title=title + (f" (top {top})" if len(features) > top else ""))
    return fig


def _method_title(method: str) -> str:
    return "SHAP" if method == "tree_shap" else "Occlusion"


def _colour_values(values: Sequence[Any]) -> tuple[np.ndarray, bool]:
    """Feature values mapped to 0..1 for colour (numeric: percentile-clipped scale;
    categorical: category code order); NaN where missing. Second item: numeric or not."""
    arr = np.asarray(values, dtype=object)
    try:
        num = np.asarray([np.nan if v is None else float(v) for v in arr], dtype=float)
        numeric = True
    except (TypeError, ValueError):
        numeric = False
    if numeric:
        finite = num[np.isfinite(num)]
        if len(finite) == 0:
            return num, True
        lo, hi = np.percentile(finite, [5, 95])
        if hi <= lo:
            lo, hi = finite.min(), finite.max()
        return np.clip((num - lo) / ((hi - lo) or 1.0), 0, 1), True
    cats = sorted({str(v) for v in arr if v is not None})
    code = {c: i for i, c in enumerate(cats)}
    out = np.asarray([np.nan if v is None else code[str(v)] for v in arr], dtype=float)
    return out / max(len(cats) - 1, 1), False


@_chart
def shap_summary(features: Sequence[str], values: Sequence[Sequence[float]],
                 feature_values: dict[str, Sequence[Any]], units: str,
                 method: str = "tree_shap") -> Figure:
    """Beeswarm: one dot per row and feature at its contribution, coloured by the feature's
    value (blue low, red high; categories in name order), features by mean |value|."""
    v = np.asarray(values, dtype=float)  # rows x features
    order = np.argsort(-np.abs(v).mean(axis=0), kind="stable")
    fig, ax = _figure((WIDE[0], max(3.0, 1.2 + 0.45 * len(features))))
    rng = np.random.default_rng(0)
    scatter = None
    for pos, j in enumerate(order):
        col = v[:, j]
        # jitter by local density: a crowded value spreads wider, as a beeswarm does
        hist, edges = np.histogram(col, bins=50)
        which = np.clip(np.digitize(col, edges[1:-1]), 0, len(hist) - 1)
        spread = 0.38 * hist[which] / max(hist.max(), 1)
        y = pos + rng.uniform(-1, 1, len(col)) * spread
        colours, _ = _colour_values(feature_values.get(features[j], [None] * len(col)))
        missing = ~np.isfinite(colours)
        ax.scatter(col[missing], y[missing], s=7, color="#bbbbbb", linewidths=0)
        scatter = ax.scatter(col[~missing], y[~missing], s=7, c=colours[~missing],
                             cmap=LOW_HIGH, vmin=0, vmax=1, linewidths=0, alpha=0.8)
    ax.axvline(0, color=CHANCE, linewidth=1)
    ax.set_yticks(range(len(order)), [wrap(features[j]) for j in order])
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.set(xlabel=f"contribution to the prediction ({units})",
           title=f"{_method_title(method)} summary: each dot a row")
    if scatter is not None:
        bar = fig.colorbar(scatter, ax=ax, ticks=[0, 1], shrink=0.8, pad=0.01)
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("feature value (categories: name order; grey: missing)")
    return fig


@_chart
def shap_dependence(feature: str, feature_values: Sequence[Any], contributions: Sequence[float],
                    units: str, method: str = "tree_shap") -> Figure:
    """A feature's contribution against its value: a scatter for numbers, a strip per
    category (most frequent first) otherwise."""
    c = np.asarray(contributions, dtype=float)
    _, numeric = _colour_values(feature_values)
    fig, ax = _figure(fit=not numeric)
    if numeric:
        x = np.asarray([np.nan if v is None else float(v) for v in feature_values])
        ax.scatter(x, c, s=9, alpha=0.5, color=MAIN, linewidths=0)
        ax.set_xlabel(wrap(feature, 60))
    else:
        labels = np.asarray(["(missing)" if v is None else str(v) for v in feature_values])
        names, counts = np.unique(labels, return_counts=True)
        names = names[np.argsort(-counts, kind="stable")][:15]
        rng = np.random.default_rng(0)
        for i, name in enumerate(names):
            vals = c[labels == name]
            ax.scatter(i + rng.uniform(-0.25, 0.25, len(vals)), vals, s=9, alpha=0.5,
                       color=MAIN, linewidths=0)
        ax.set_xticks(range(len(names)), [wrap(n, 16) for n in names],
                      rotation=30 if len(names) > 3 else 0,
                      ha="right" if len(names) > 3 else "center")
        ax.set_xlabel(wrap(feature, 60))
    ax.axhline(0, color=CHANCE, linewidth=1)
    ax.set(ylabel=f"contribution ({wrap(units, 40)})",
           title=f"{_method_title(method)} dependence: {wrap(feature, 40)}")
    return fig


@_chart
def partial_dependence(feature: str, grid: Sequence[Any], average: dict[str, Sequence[float]],
                       ice: Sequence[Sequence[float]] | None, output: str, numeric: bool
                       ) -> Figure:
    """Average prediction as one feature sweeps its grid (thick line), and single rows'
    curves (ICE, thin lines) when there is one output; one line per class otherwise."""
    fig, ax = _figure(fit=not numeric)
    x = np.arange(len(grid)) if not numeric else np.asarray(grid, dtype=float)
    if ice:
        for curve in ice:
            ax.plot(x, curve, color=MAIN, alpha=0.12, linewidth=0.8)
    colours = [MAIN, SECOND, "#3a9d5d", "#c0392b", "#8e44ad", "#16a085", "#7f8c8d"]
    for i, (name, line) in enumerate(average.items()):
        ax.plot(x, line, color="#111" if ice else colours[i % len(colours)],
                linewidth=2.5, marker=None if numeric else "o",
                label=("average (partial dependence)" if ice else wrap(name, 24)))
    if not numeric:
        ax.set_xticks(x, [wrap(g, 16) for g in grid], rotation=30 if len(grid) > 3 else 0,
                      ha="right" if len(grid) > 3 else "center")
    ax.set(xlabel=wrap(feature, 60), ylabel=wrap(output, 50),
           title=f"Partial dependence{' and ICE' if ice else ''}: {wrap(feature, 32)}")
    ax.legend(loc="best")
    return fig


# -- data exploration ---------------------------------------------------------------------

@_chart
def target_by_group(column: str, groups: Sequence[dict[str, Any]], overall: dict[str, float],
                    kind: str) -> Figure:
    """The target per category or numeric bin of one column: for classification the share
    of each class (stacked bars, the positive class alone for binary), for regression the
    mean with the 25-75 % range; each group labelled with its row count."""
    labels = [wrap(g["group"], 28) for g in groups]
    y = np.arange(len(groups))
    fig, ax = _figure((WIDE[0], max(2.4, 1.1 + 0.42 * len(groups))))
    if kind == "regression":
        means = [g["mean"] for g in groups]
        lo = [g["mean"] - g["q25"] for g in groups]
        hi = [g["q75"] - g["mean"] for g in groups]
        # a point and its range, not a bar from zero: the differences stay visible
        ax.errorbar(means, y, xerr=[np.clip(lo, 0, None), np.clip(hi, 0, None)], fmt="o",
                    color=MAIN, ecolor="#555", capsize=3, markersize=7, label="mean")
        ax.axvline(overall["mean"], color=SECOND, linestyle="--", linewidth=1.5,
                   label=f"overall mean ({overall['mean']:.4g})")
        xlabel = "target mean (lines: the middle 50 % of the rows)"
    else:
        classes = list(overall)
        left = np.zeros(len(groups))
        palette = matplotlib.colormaps["tab10"].colors
        for i, cls in enumerate(classes):
            share = np.asarray([g["shares"].get(cls, 0.0) for g in groups])
            other = cls.startswith("(other")
            ax.barh(y, share, left=left, label=wrap(cls, 24),
                    color="#bbbbbb" if other else (MAIN if len(classes) == 1
                                                   else palette[i % len(palette)]))
            if len(classes) == 1:
                for yi, s in zip(y, share, strict=True):
                    ax.text(s + 0.005, yi, f"{s:.1%}", va="center", fontsize=9)
            left += share
        if len(classes) == 1:
            ax.axvline(overall[classes[0]], color=SECOND, linestyle="--", linewidth=1.5,
                       label=f"overall ({overall[classes[0]]:.1%})")
            ax.set_xlim(0, min(1.0, max(left.max(), overall[classes[0]]) * 1.2 + 0.02))
            xlabel = f'share of "{classes[0]}"'
            ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        else:
            ax.set_xlim(0, 1)
            xlabel = "share of each class"
    ax.set_yticks(y, [f"{lab}  (n={g['rows']})" for lab, g in zip(labels, groups, strict=True)])
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    what = xlabel[0].upper() + xlabel[1:] if kind != "regression" else "Target mean"
    ax.set(xlabel=xlabel, title=f"{what} by {wrap(column, 50)}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)  # off the data
    return fig


# -- training -----------------------------------------------------------------------------

@_chart
def training_curves(train: Sequence[float], validation: Sequence[float], metric: str,
                    best_iteration: int | None = None) -> Figure:
    """The training and validation loss per boosting round / epoch (curves.json), the best
    round marked: a widening gap after it is overfitting, a flat start a learning problem."""
    fig, ax = _figure(fit=False)
    ax.plot(np.arange(1, len(train) + 1), train, color=MAIN, linewidth=2, label="training")
    if len(validation):
        ax.plot(np.arange(1, len(validation) + 1), validation, color=SECOND, linewidth=2,
                label="validation")
    if best_iteration:
        ax.axvline(best_iteration, color=CHANCE, linestyle="--", linewidth=1,
                   label=f"best round ({best_iteration})")
    ax.set(xlabel="round", ylabel=metric, title=f"Training curves ({metric})")
    ax.legend(loc="upper right")
    return fig


# -- forecasting --------------------------------------------------------------------------

@_chart
def forecast_backtest(history_ds: Sequence[Any], history: Sequence[float],
                      ds: Sequence[Any], actual: Sequence[float], mean: Sequence[float],
                      bands: Sequence[tuple[str, Sequence[float], Sequence[float]]],
                      title: str) -> Figure:
    """One item's backtest window: the end of its training history, the actual values and
    the forecast's mean, each quantile band (outermost first: 'p10-p90', then inner ones)
    shaded lighter to darker. An actual outside its band is the model's miss, in plain
    sight; bands that stay narrow and still hold the actuals are what a good model draws."""
    fig, ax = _figure(WIDE, fit=False)
    ax.plot(history_ds, history, color=CHANCE, linewidth=1.5, label="history")
    for k, (label, lower, upper) in enumerate(bands):
        ax.fill_between(ds, lower, upper, color=MAIN, alpha=0.15 + 0.15 * k, linewidth=0,
                        label=label)
    ax.plot(ds, mean, color=MAIN, linewidth=2, label="forecast (mean)")
    ax.plot(ds, actual, color=SECOND, linewidth=2, marker="o", markersize=3, label="actual")
    ax.set(title=title)
    ax.legend(loc="upper left", ncols=3)
    return fig
