"""TextFeaturizer: one text column -> word and character n-gram TF-IDF features.

Word n-grams carry the meaning of reviews and tickets; character n-grams inside word
boundaries (`char_wb`) catch misspellings, inflections and words unseen in training,
which matters on the short, noisy texts users classify. Both are sublinear TF-IDF,
L2-normalised per block. With `svd_components` the sparse matrix is reduced by a
TruncatedSVD to a few hundred dense columns (latent semantic analysis), the input
gradient boosting needs: trees split badly on hundreds of thousands of sparse columns.

It follows the scikit-learn contract like `TabularEncoder` (parameters stored in
`__init__`, learned state ending in `_`) and offers the attributes a trial, a
`Predictor` and the reports read from an encoder (`text`, `n_features_out_`,
`categorical_indices_`, `source_columns`), so it is packaged inside model directories
exactly as the tabular encoder is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from threadpoolctl import threadpool_limits

from tabpilot.features.columns import as_text, columns_of

# the token pattern explanations remove words by (text/explain.py): the vectorizer's own
TOKEN_PATTERN = r"(?u)\b\w\w+\b"


class TextFeaturizer(TransformerMixin, BaseEstimator):
    """Encode text columns (joined by a space when several) as TF-IDF n-grams.

    word_ngrams / char_ngrams: n-gram ranges (None leaves that block out).
    max_word_features / max_char_features: the most frequent n-grams kept per block.
    min_df: an n-gram must occur in this many documents (1 on corpora too small for it).
    svd_components: reduce to this many dense columns (None: the sparse matrix).
    """

    def __init__(self, text: Sequence[str] = (), word_ngrams: tuple[int, int] | None = (1, 2),
                 char_ngrams: tuple[int, int] | None = (3, 5),
                 max_word_features: int = 100_000, max_char_features: int = 100_000,
                 min_df: int = 2, svd_components: int | None = None, seed: int = 0) -> None:
        self.text = text
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.max_word_features = max_word_features
        self.max_char_features = max_char_features
        self.min_df = min_df
        self.svd_components = svd_components
        self.seed = seed

    # an encoder's introspection, as the trial and the reports read it
    categorical: tuple[str, ...] = ()
    categorical_indices_: list[int] = []

    def _documents(self, X: pd.DataFrame) -> np.ndarray:
        if not self.text:
            raise ValueError("TextFeaturizer needs at least one text column")
        cols = columns_of(X, list(self.text))
        texts = [as_text(cols[c]) for c in self.text]
        if len(texts) == 1:
            return texts[0]
        out = np.empty(len(X), dtype=object)
        out[:] = [" ".join(parts) for parts in zip(*texts, strict=True)]
        return out

    def _vectorizers(self, min_df: int) -> list[tuple[str, TfidfVectorizer]]:
        made = []
        if self.word_ngrams is not None:
            made.append(("word", TfidfVectorizer(
                ngram_range=tuple(self.word_ngrams), min_df=min_df, sublinear_tf=True,
                max_features=self.max_word_features, strip_accents="unicode",
                token_pattern=TOKEN_PATTERN, dtype=np.float32)))
        if self.char_ngrams is not None:
            made.append(("char", TfidfVectorizer(
                analyzer="char_wb", ngram_range=tuple(self.char_ngrams), min_df=min_df,
                sublinear_tf=True, max_features=self.max_char_features,
                strip_accents="unicode", dtype=np.float32)))
        if not made:
            raise ValueError("TextFeaturizer needs word_ngrams or char_ngrams")
        return made

    def fit(self, X: pd.DataFrame, y=None) -> TextFeaturizer:
        """Learn the vocabularies (and the SVD); a trial then transforms every row it
        touches once, so fitting does not build the sparse matrix it need not keep."""
        docs = self._documents(X)
        # a tiny corpus has no n-gram in two documents: keep every one rather than fail
        min_df = self.min_df if len(docs) >= 10 * self.min_df else 1
        self.vectorizers_ = []
        blocks = []
        for name, vec in self._vectorizers(min_df):
            try:
                if self.svd_components:
                    blocks.append(vec.fit_transform(docs))
                else:
                    vec.fit(docs)
            except ValueError:  # empty vocabulary (blank or one-letter texts only)
                vec.set_params(min_df=1)
                vec.fit(np.append(docs, "empty"))
                if self.svd_components:
                    blocks.append(vec.transform(docs))
            self.vectorizers_.append((name, vec))
        self.svd_ = None
        width = sum(len(vec.vocabulary_) for _, vec in self.vectorizers_)
        if self.svd_components:
            k = int(min(self.svd_components, width - 1, len(docs) - 1))
            if k >= 1:
                self.svd_ = TruncatedSVD(k, algorithm="randomized", n_iter=4,
                                         random_state=self.seed)
                # one BLAS thread: trials run one per core, and BLAS threads of parallel
                # trials fighting over the cores made this ten times slower
                with threadpool_limits(limits=1):
                    self.svd_.fit(sp.hstack(blocks, format="csr"))
                width = k
        self.n_features_out_ = width
        return self

    def transform(self, X: pd.DataFrame):
        docs = self._documents(X)
        matrix = sp.hstack([vec.transform(docs) for _, vec in self.vectorizers_], format="csr")
        if self.svd_ is None:
            return matrix
        return self.svd_.transform(matrix).astype(np.float32)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        if self.svd_ is not None:
            return np.array([f"svd{i}" for i in range(self.n_features_out_)], dtype=object)
        return np.array([f"{name}:{t}" for name, vec in self.vectorizers_
                         for t in vec.get_feature_names_out()], dtype=object)

    def source_columns(self) -> list[str]:
        """The input column each output column comes from (the first when joined)."""
        return [self.text[0]] * self.n_features_out_
