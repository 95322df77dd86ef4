"""Word occlusion: the planted words lead each class's list; one row's words explain its
label; words are taken out whole, in any case, never inside other words."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from textlib import PLANTED, reviews

from tabpilot.artifacts.predictor import Predictor
from tabpilot.data.schema import ColumnKind, Schema
from tabpilot.features import build_encoder
from tabpilot.models import FitData, get_family
from tabpilot.tasks import ProblemType
from tabpilot.text.explain import (
    MIN_DOCUMENTS,
    explain_rows,
    text_column,
    top_words,
    without,
    words,
)

DF = reviews(300, classes=("bad", "good"), seed=1)
CLASSES = ["bad", "good"]


def _model() -> Predictor:
    schema = Schema({"review": ColumnKind.TEXT})
    family = get_family("text_logistic")
    enc = build_encoder(schema, family.style).fit(DF)
    y = (DF["label"] == "good").astype(int).to_numpy()
    est = family.fit({"C": 10.0}, FitData(X=enc.transform(DF), y=y,
                                          problem_type=ProblemType.BINARY, n_classes=2,
                                          categorical_indices=[]))
    return Predictor(enc, family.name, [est], ProblemType.BINARY, ["review"], CLASSES, 0.5)


MODEL = _model()


def test_words_and_their_removal() -> None:
    assert words("Love it, LOVE the fit; a lovely dress") == ["love", "it", "the", "fit",
                                                              "lovely", "dress"]
    assert without("Love it, LOVE the lovely fit", "love").split() == ["it,", "the",
                                                                      "lovely", "fit"]


def test_planted_words_lead_each_class() -> None:
    found = top_words(MODEL, DF, "review", rows=120)
    assert found["method"] == "word_occlusion" and found["rows"] == 120
    for label in CLASSES:
        listed = [w["word"] for w in found["classes"][label]]
        assert set(listed[:4]) == set(PLANTED[label]), (label, listed)
        weights = [w["weight"] for w in found["classes"][label]]
        assert weights == sorted(weights, reverse=True) and weights[0] > 0.05
        assert all(w["rows"] >= found["min_rows"] for w in found["classes"][label])


def test_past_the_deadline_a_few_documents_are_still_explained_and_it_says_so() -> None:
    found = top_words(MODEL, DF, "review", rows=120, deadline=time.time() - 1)
    assert found["rows"] == MIN_DOCUMENTS and "30 of 120 documents" in found["stopped"]
    assert found["classes"]["good"]  # a short list, not nothing
    assert "stopped" not in top_words(MODEL, DF.head(40), "review", rows=40)


def test_one_row_is_explained_by_its_own_words() -> None:
    rows = pd.DataFrame({"review": ["The fabric is scratchy and I returned it",
                                    "Perfect and flattering, I love the colour"]})
    out = explain_rows(MODEL, rows, "review", top=3)
    assert [r["predicted"] for r in out] == ["bad", "good"]
    assert {w["word"] for w in out[0]["words"][:2]} == {"scratchy", "returned"}
    assert out[1]["words"][0]["word"] in PLANTED["good"]
    assert all(w["weight"] > 0 for w in out[1]["words"][:2])
    assert 0.5 < out[1]["probability"] <= 1.0 and np.isfinite(out[0]["probability"])


def test_only_a_model_on_one_text_column_is_a_text_model() -> None:
    assert text_column({"features": ["review"], "input_schema": {"review": "text",
                                                                 "id": "id"}}) == "review"
    assert text_column({"features": ["review", "stars"],
                        "input_schema": {"review": "text", "stars": "numeric"}}) is None
    assert text_column({"features": ["stars"], "input_schema": {"stars": "numeric"}}) is None


def test_the_explanations_page_shows_the_words_per_class() -> None:
    from tabpilot.reports.html import render_explanations

    found = top_words(MODEL, DF, "review", rows=60)
    page = render_explanations("text_logistic-000", {
        "algorithm": "TfidfLogistic", "problem_type": "binary", "rows": 60, "text": found,
        "feature_importance": {"method": "permutation_Accuracy",
                               "importance": [{"feature": "review", "value": 0.4}]}})
    assert 'id="words"' in page and page.count('alt="towards ') == 2
    top_good = found["classes"]["good"][0]["word"]
    assert f"<td>good</td><td>{top_good} (" in page
