"""Which words a text model leans on: per class over a sample of rows, and for one row.

Every text candidate (a linear model on n-grams, LightGBM on SVD components, an ensemble
or a stack of them) is explained the same way, by word occlusion: a word's weight in a
document is how much the predicted probability of a class drops when every occurrence of
the word is taken out of it. Reading linear coefficients instead would explain only the
linear models, and character n-grams or SVD components are not words a user can read;
occlusion is exact about what the served model does with the text it is given, ensembles
included, in the units users reason in (probability). Its cost is one prediction per
distinct word of each document, batched.

Globally a word's weight for a class is its mean effect over the sampled documents that
hold it, shrunk towards zero as if PRIOR_ROWS more documents held it to no effect: a
word seen in three reviews must be much stronger than one seen in thirty to rank above
it (the plain mean ranks rare words by chance; the effect summed over documents ranks
"the" and "was" first, strong only by frequency). Words in fewer than MIN_ROWS
documents are left out.
"""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.text.featurizer import TOKEN_PATTERN

GLOBAL_ROWS = 200  # documents sampled for the per-class lists
WORDS_PER_DOCUMENT = 50  # distinct words occluded per document (its first ones)
TOP_WORDS = 15  # words listed per class
ROW_WORDS = 10  # words listed for one row
MIN_ROWS = 2  # documents a word must appear in to be listed globally
MIN_DOCUMENTS = 30  # documents explained even past the deadline: fewer list noise
PRIOR_ROWS = 5  # documents of no effect a word's mean is shrunk with
BATCH = 4000  # variant documents predicted per call
_TOKEN = re.compile(TOKEN_PATTERN)


def text_column(metadata: dict[str, Any]) -> str | None:
    """The text column of a model whose only feature is text (a text job's), else None."""
    features = metadata.get("features") or []
    kinds = metadata.get("input_schema") or {}
    if len(features) == 1 and kinds.get(features[0]) == "text":
        return str(features[0])
    return None


def words(document: str) -> list[str]:
    """The distinct words of a document, lower-cased, in order of first appearance (the
    vectorizer's tokens: two or more word characters)."""
    return list(dict.fromkeys(t.lower() for t in _TOKEN.findall(document)))


def without(document: str, word: str) -> str:
    """The document with every occurrence of `word` (any case) taken out."""
    return re.sub(rf"(?iu)(?<!\w){re.escape(word)}(?!\w)", " ", document)


def _documents(values: pd.Series | list[Any]) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
            for v in list(values)]


def word_effects(predictor: Any, column: str, documents: list[str],
                 deadline: float | None = None
                 ) -> tuple[np.ndarray, list[list[tuple[str, np.ndarray]]]]:
    """Each document's class probabilities, and for each of its words (the first
    WORDS_PER_DOCUMENT) the drop in every class's probability when the word is taken out.
    Documents not reached by `deadline` (time.time()) get no words, beyond the first
    MIN_DOCUMENTS."""
    base = np.asarray(predictor.raw_predict(pd.DataFrame({column: documents})), dtype=float)
    effects: list[list[tuple[str, np.ndarray]]] = [[] for _ in documents]
    pending: list[tuple[int, str, str]] = []

    def flush() -> None:
        if not pending:
            return
        frame = pd.DataFrame({column: [variant for _, _, variant in pending]})
        out = np.asarray(predictor.raw_predict(frame), dtype=float)
        for (row, word, _), proba in zip(pending, out, strict=True):
            effects[row].append((word, base[row] - proba))
        pending.clear()

    for row, document in enumerate(documents):
        if deadline is not None and row >= MIN_DOCUMENTS and time.time() > deadline:
            break
        for word in words(document)[:WORDS_PER_DOCUMENT]:
            pending.append((row, word, without(document, word)))
        if len(pending) >= BATCH:
            flush()
    flush()
    return base, effects


def top_words(predictor: Any, X: pd.DataFrame, column: str, rows: int = GLOBAL_ROWS,
              top: int = TOP_WORDS, seed: int = 0, deadline: float | None = None
              ) -> dict[str, Any]:
    """The words that weigh most towards each class over a seeded sample of `rows`
    documents of X (JSON-ready): {"method", "units", "rows", "classes": {label: [{"word",
    "weight", "rows"}, ...]}}, weight = mean drop in the class's probability without it."""
    documents = _documents(X[column])
    if len(documents) > rows:
        pick = np.sort(np.random.default_rng(seed).choice(len(documents), rows, replace=False))
        documents = [documents[i] for i in pick]
    _, effects = word_effects(predictor, column, documents, deadline)
    reached = sum(1 for e in effects if e) or 1
    stopped = sum(1 for d in documents if words(d)) > reached
    labels = [str(c) for c in (predictor.classes or [])]
    totals: dict[str, np.ndarray] = {}
    seen: dict[str, int] = {}
    for found in effects:
        for word, delta in found:
            totals[word] = totals.get(word, 0.0) + delta
            seen[word] = seen.get(word, 0) + 1
    mean = {w: totals[w] / (seen[w] + PRIOR_ROWS) for w in totals if seen[w] >= MIN_ROWS}
    per_class: dict[str, list[dict[str, Any]]] = {}
    for k, label in enumerate(labels):
        ranked = sorted(mean, key=lambda w: -mean[w][k])
        per_class[label] = [
            {"word": w, "weight": round(float(mean[w][k]), 6), "rows": seen[w]}
            for w in ranked[:top] if mean[w][k] > 0]
    found: dict[str, Any] = {} if not stopped else {
        "stopped": f"the report's time share ran out after {reached} of {len(documents)} "
                   "documents; `tabpilot report JOB` explains them all"}
    return {"method": "word_occlusion", "column": column, "rows": reached,
            "min_rows": MIN_ROWS, "classes": per_class, **found,
            "units": "mean drop in the class's probability when the word is taken out of "
                     f"a document that holds it (shrunk by {PRIOR_ROWS} documents of no "
                     "effect)"}


def explain_rows(predictor: Any, X: pd.DataFrame, column: str, top: int = ROW_WORDS
                 ) -> list[dict[str, Any]]:
    """For each row: its predicted label and the words that weigh most on that prediction
    (largest effect first, either sign: a negative weight argues against the label)."""
    documents = _documents(X[column])
    base, effects = word_effects(predictor, column, documents)
    index = predictor.labels_from_index(base)
    labels = list(predictor.classes or [])
    out = []
    for row, found in enumerate(effects):
        k = int(index[row])
        ranked = sorted(found, key=lambda e: -abs(e[1][k]))[:top]
        out.append({"predicted": labels[k], "probability": round(float(base[row][k]), 6),
                    "words": [{"word": w, "weight": round(float(d[k]), 6)} for w, d in ranked]})
    return out
