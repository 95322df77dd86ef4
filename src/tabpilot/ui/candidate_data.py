"""What the candidate, compare and exploration pages show, read from a job's folder.

Every number comes from what the job saved (reports/candidate.py's files): insights.json
when the job had time to write it, else the same `reports.insights.model_insights` run on
the saved validation targets and predictions (no model, no prediction, milliseconds); the
importance from explanations.json, else `reports.explain.global_importance` on the saved
validation sample. Results are kept per file stamp, so a page and its chart images compute
them once. Charts are drawn by `reports/charts.py`, the notebooks' and reports' own.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tabpilot.errors import NotFoundError
from tabpilot.store import CandidateRow, JobRow
from tabpilot.tasks import ProblemType

INSIGHTS, EXPLANATIONS, METADATA = "insights.json", "explanations.json", "metadata.json"
VALIDATION_PREDICTIONS = "validation_predictions.npy"
VALIDATION_TARGET = "validation_target.npy"


class _Memo:
    """A few computed results by key (the key holds the files' stamps)."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


_MEMO = _Memo()
_MODELS = _Memo(4)  # loaded models, for the per-row explanations
_PNGS = _Memo(64)  # drawn charts (tens of KiB each): drawing one costs far more than a page


def _stamp(path: Path) -> tuple[str, float] | None:
    return (str(path), path.stat().st_mtime) if path.is_file() else None


def candidate_dir(job: JobRow, candidate: CandidateRow) -> Path:
    if candidate.artifact_dir:
        return Path(candidate.artifact_dir).parent
    return Path(job.job_dir) / "candidates" / candidate.name


def metadata(job: JobRow, candidate: CandidateRow) -> dict[str, Any]:
    path = candidate_dir(job, candidate) / "model" / METADATA
    if not path.is_file():
        raise NotFoundError(f"candidate {candidate.name!r} of job {job.name!r} has no packaged "
                            f"model (status {candidate.status}); its job kept no files for it")
    return _MEMO.get(("meta", _stamp(path)), lambda: json.loads(path.read_text()))


def loaded_model(artifact_dir: str) -> Any:
    """The candidate's model (`artifacts.load`: verified, then unpickled), kept for the
    next explanation while its manifest is unchanged."""
    from tabpilot.artifacts import load

    manifest = Path(artifact_dir) / "manifest.json"
    return _MODELS.get(("model", _stamp(manifest)), lambda: load(artifact_dir))


def insights(job: JobRow, candidate: CandidateRow) -> dict[str, Any]:
    """insights.json's content (metrics with intervals, curves, tables) for a candidate."""
    folder = candidate_dir(job, candidate)
    saved = folder / INSIGHTS
    if saved.is_file():
        return _MEMO.get(("insights", _stamp(saved)), lambda: json.loads(saved.read_text()))
    preds, target = folder / VALIDATION_PREDICTIONS, Path(job.job_dir) / VALIDATION_TARGET
    if not preds.is_file() or not target.is_file():
        raise NotFoundError(f"candidate {candidate.name!r} kept no validation predictions; "
                            "its insights cannot be drawn")
    meta = metadata(job, candidate)

    def make() -> dict[str, Any]:
        from tabpilot.reports.insights import model_insights

        y = np.load(target, allow_pickle=False)
        pred = np.load(preds, allow_pickle=False).astype(np.float64)
        if len(pred) != len(y):  # a refit's predictions belong to another split
            raise NotFoundError(f"candidate {candidate.name!r}'s validation predictions do "
                                "not match the job's validation rows")
        return model_insights(ProblemType(meta["problem_type"]), y, pred,
                              meta.get("classes"), meta.get("threshold"))

    return _MEMO.get(("computed", _stamp(preds), _stamp(target)), make)


def importance(job: JobRow, candidate: CandidateRow) -> dict[str, Any]:
    """{"method", "importance": [{"feature", "value"}], "computed_here"} on raw columns."""
    folder = candidate_dir(job, candidate)
    saved = folder / EXPLANATIONS
    if saved.is_file():
        return _MEMO.get(("importance", _stamp(saved)), lambda: {
            **json.loads(saved.read_text())["feature_importance"], "computed_here": False})
    model_dir = folder / "model"

    def make() -> dict[str, Any]:
        from tabpilot.artifacts import load
        from tabpilot.metrics import resolve_metric
        from tabpilot.reports.candidate import load_validation_sample
        from tabpilot.reports.explain import global_importance

        model = load(model_dir)
        X, y = load_validation_sample(Path(job.job_dir))
        metric = resolve_metric(job.metric, model.problem_type)
        found = global_importance(model.predictor, X, y, metric, model.predictor.threshold)
        return {**found, "computed_here": True, "rows": len(X)}

    return _MEMO.get(("importance-made", _stamp(model_dir / "manifest.json")), make)


# -- charts -----------------------------------------------------------------------------
def chart_list(ins: dict[str, Any]) -> list[dict[str, str]]:
    """The charts a candidate has: name (the route's), title, what it shows."""
    if "binary" in ins:
        b = ins["binary"]
        out = [("roc", "ROC curve", f"ROC AUC {b.get('roc_auc', float('nan')):.4f}"),
               ("pr", "Precision-recall curve",
                f"average precision {b.get('average_precision', float('nan')):.4f}"),
               ("confusion", "Confusion matrix", f"at the threshold {b['threshold']:.4f}"),
               ("gain", "Cumulative gain", "positives captured by the top rows"),
               ("lift", "Lift by decile", "positive rate of each tenth over the whole")]
        if b["calibration"]["mean_predicted"]:
            out.append(("calibration", "Calibration", "observed share per probability bin"))
    elif "multiclass" in ins:
        out = [("confusion", "Confusion matrix", "count and share of the actual class"),
               ("per-class", "Per-class scores", "precision, recall and F1 per class")]
    else:
        out = [("actual", "Actual against predicted", "one dot per validation row"),
               ("residuals", "Residuals against predicted", "actual minus predicted"),
               ("residual-histogram", "Residual histogram", "rows per residual bin")]
    return [{"name": n, "title": t, "note": note} for n, t, note in out]


def draw(ins: dict[str, Any], name: str) -> Any:
    """The named chart as a matplotlib Figure (KeyError: no such chart here)."""
    from tabpilot.reports import charts  # matplotlib: when a chart is first drawn

    if "binary" in ins:
        b = ins["binary"]
        pos = b.get("positive_class")
        drawers: dict[str, Callable[[], Any]] = {
            "roc": lambda: charts.roc(b["roc_curve"]["fpr"], b["roc_curve"]["tpr"],
                                      b.get("roc_auc", float("nan")), pos),
            "pr": lambda: charts.precision_recall(
                b["precision_recall_curve"]["recall"], b["precision_recall_curve"]["precision"],
                b.get("average_precision", float("nan")), b.get("positive_rate", float("nan")),
                pos),
            "confusion": lambda: charts.confusion(b["confusion_matrix"]["labels"],
                                                  b["confusion_matrix"]["matrix"]),
            "gain": lambda: charts.cumulative_gain(b["gain_lift"]),
            "lift": lambda: charts.lift(b["gain_lift"]),
            "calibration": lambda: charts.calibration(b["calibration"]["mean_predicted"],
                                                      b["calibration"]["fraction_positive"], pos),
        }
    elif "multiclass" in ins:
        m = ins["multiclass"]
        drawers = {"confusion": lambda: charts.confusion(m["confusion_matrix"]["labels"],
                                                         m["confusion_matrix"]["matrix"]),
                   "per-class": lambda: charts.per_class(m["per_class"])}
    else:
        r = ins["regression"]
        avp, h = r["actual_vs_predicted"], r["residual_histogram"]
        drawers = {"actual": lambda: charts.actual_vs_predicted(avp["actual"], avp["predicted"]),
                   "residuals": lambda: charts.residuals_vs_predicted(avp["actual"],
                                                                      avp["predicted"]),
                   "residual-histogram": lambda: charts.residual_histogram(h["edges"],
                                                                          h["counts"])}
    return drawers[name]()


def chart_tables(ins: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each chart's numbers as a table (header, rows): the charts' text alternative."""
    def f(v: Any, digits: int = 4) -> str:
        return "—" if v is None else f"{float(v):.{digits}g}"

    if "binary" in ins:
        b = ins["binary"]
        roc, pr, cal = b["roc_curve"], b["precision_recall_curve"], b["calibration"]
        labels = [str(v) for v in b["confusion_matrix"]["labels"]]
        return {
            "roc": {"header": ["false positive rate", "true positive rate"],
                    "rows": [[f(x), f(y)] for x, y in zip(roc["fpr"], roc["tpr"], strict=True)]},
            "pr": {"header": ["recall", "precision"],
                   "rows": [[f(x), f(y)] for x, y in zip(pr["recall"], pr["precision"],
                                                         strict=True)]},
            "confusion": _confusion_table(labels, b["confusion_matrix"]["matrix"]),
            "gain": {"header": ["decile", "rows", "cumulative gain"],
                     "rows": [[g["decile"], g["rows"], f(g["cumulative_gain"])]
                              for g in b["gain_lift"]]},
            "lift": {"header": ["decile", "positive rate", "lift"],
                     "rows": [[g["decile"], f(g["positive_rate"]), f(g["lift"])]
                              for g in b["gain_lift"]]},
            "calibration": {"header": ["mean predicted probability", "observed share"],
                            "rows": [[f(x), f(y)] for x, y in zip(
                                cal["mean_predicted"], cal["fraction_positive"], strict=True)]},
        }
    if "multiclass" in ins:
        m = ins["multiclass"]
        labels = [str(v) for v in m["confusion_matrix"]["labels"]]
        return {"confusion": _confusion_table(labels, m["confusion_matrix"]["matrix"]),
                "per-class": {"header": ["class", "precision", "recall", "F1", "rows"],
                              "rows": [[c["label"], f(c["precision"]), f(c["recall"]),
                                        f(c["f1"]), c["support"]] for c in m["per_class"]]}}
    r = ins["regression"]
    avp, h = r["actual_vs_predicted"], r["residual_histogram"]
    pairs = list(zip(avp["actual"], avp["predicted"], strict=True))[:200]
    edges = h["edges"]
    return {
        "actual": {"header": ["actual", "predicted"],
                   "rows": [[f(a, 6), f(p, 6)] for a, p in pairs]},
        "residuals": {"header": ["predicted", "residual"],
                      "rows": [[f(p, 6), f(a - p, 6)] for a, p in pairs]},
        "residual-histogram": {"header": ["from", "to", "rows"],
                               "rows": [[f(edges[i], 5), f(edges[i + 1], 5), c]
                                        for i, c in enumerate(h["counts"])]},
    }


def _confusion_table(labels: list[str], matrix: list[list[int]]) -> dict[str, Any]:
    return {"header": ["actual \\ predicted", *labels],
            "rows": [[labels[i], *row] for i, row in enumerate(matrix)]}


def png(fig: Any) -> bytes:
    from tabpilot.reports import charts

    return charts.png(fig)


def chart_png(job: JobRow, candidate: CandidateRow, name: str,
              draw_it: Callable[[], Any]) -> bytes:
    """A candidate's chart as PNG bytes, drawn once per state of the files it comes from."""
    folder = candidate_dir(job, candidate)
    key = ("png", str(folder), name, _stamp(folder / INSIGHTS), _stamp(folder / EXPLANATIONS),
           _stamp(folder / VALIDATION_PREDICTIONS))
    return _PNGS.get(key, lambda: png(draw_it()))


def file_png(source: Path, name: str, draw_it: Callable[[], Any]) -> bytes:
    """A chart drawn from one file (a job's data_exploration.json), once per its state."""
    return _PNGS.get(("png", str(source), name, _stamp(source)), lambda: png(draw_it()))
