"""features/tfidf.py: a fitted TF-IDF vectorizer's vectors without scikit-learn's input
checks, equal to `transform`'s bit for bit (a tree's split on 0.2873 must go the same way)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from tabpilot.features.columns import as_text
from tabpilot.features.tfidf import fast_tfidf, tfidf_transform

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
WORDS = ["price", "Quality", "great", "poor", "Mr.", "Mrs", "fit", "size", "naïve", "café",
         "l'été", "x-ray", "3.5", "2024", "the", "a", "and", "not", "very", "return"]


def _documents(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n):
        words = rng.choice(WORDS, rng.integers(0, 30))
        sep = rng.choice([" ", ", ", "  ", "! ", "\n"])
        docs.append(sep.join(words))
    docs += ["", "   ", "unseen tokens only zzz qqq", "great great great great", "Mr. Mr. mr"]
    return np.array(docs, dtype=object)


def _vectorizers() -> list[TfidfVectorizer]:
    return [  # the encoder's (features/encoder.py), its fallback, and other shapes
        TfidfVectorizer(max_features=500, ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                        dtype=np.float32),
        TfidfVectorizer(dtype=np.float32),
        TfidfVectorizer(),
        TfidfVectorizer(norm=None, sublinear_tf=True),
        TfidfVectorizer(use_idf=False),
        TfidfVectorizer(analyzer="char", ngram_range=(2, 4), min_df=2, sublinear_tf=True),
    ]


def _equal(vectorizer: TfidfVectorizer, docs: np.ndarray) -> None:
    fast = fast_tfidf(vectorizer)
    assert fast is not None
    expected = vectorizer.transform(docs)
    got = fast.sparse(docs)
    assert type(got) is type(expected)  # XGBoost predicts on a csr_matrix, not a csr_array
    expected, got = expected.toarray(), got.toarray()
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("vectorizer", _vectorizers(), ids=lambda v: repr(v)[:60])
def test_vectors_equal_transforms_one_row_at_a_time_and_in_batches(vectorizer) -> None:
    vectorizer.fit(_documents(300, seed=0))
    docs = _documents(120, seed=1)
    _equal(vectorizer, docs)
    for doc in docs[:40]:
        _equal(vectorizer, np.array([doc], dtype=object))


def test_settings_it_does_not_reproduce_go_to_transform() -> None:
    docs = _documents(100, seed=2)
    for vectorizer in (TfidfVectorizer(binary=True), TfidfVectorizer(norm="l1"),
                       TfidfVectorizer(vocabulary=["great", "poor"]),
                       TfidfVectorizer(analyzer="char_wb"), CountVectorizer()):
        vectorizer.fit(docs)
        assert fast_tfidf(vectorizer) is None, vectorizer
    assert fast_tfidf(TfidfVectorizer()) is None  # not fitted
    # transform falls back to the vectorizer's own
    binary = TfidfVectorizer(binary=True).fit(docs)
    assert np.array_equal(tfidf_transform(binary, docs).toarray(), binary.transform(docs).toarray())


def _column(name: str, column: str) -> np.ndarray:
    path = DATASETS / name
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    with (gzip.open(path, "rt") if name.endswith(".gz") else open(path)) as f:
        return as_text(pd.read_csv(f)[column].to_numpy())


@pytest.mark.slow
@pytest.mark.parametrize(("table", "column"), [("titanic.csv", "Name"),
                                               ("titanic.csv", "Ticket"),
                                               ("womens_clothing_reviews.csv.gz", "Review Text")])
def test_real_text_columns(table: str, column: str) -> None:
    texts = _column(table, column)
    vectorizer = _vectorizers()[0].fit(texts[: len(texts) // 2])
    held_out = texts[len(texts) // 2:]
    _equal(vectorizer, held_out[:3000])
    for doc in held_out[:300]:
        _equal(vectorizer, np.array([doc], dtype=object))
