"""A fitted TfidfVectorizer's transform, without scikit-learn's input validation around it.

On one row, `TfidfVectorizer.transform` spends most of its time checking its input
(check_array, dataframe detection) rather than counting a few tokens: about 0.5 ms of a
compiled tree model's 0.7 ms answer on titanic's `Name`. Here the same steps run on the
row's few non-zero entries: the vectorizer's own analyzer and vocabulary give the counts,
in its dtype; then, as TfidfTransformer does, log + 1 (sublinear), times idf, and
scikit-learn's own in-place l2 row normalisation, in the same dtypes and order, so the
vectors are equal to transform's, bit for bit (tests/artifacts/test_fast_tfidf.py checks
it on real text columns).

Only the settings tabpilot's encoders fit are taken (word or char analyzers, counts not
binary, l2 or no norm); anything else goes to `transform` itself (`fast_tfidf` returns
None). The fast form of a vectorizer is kept beside it, never inside it: a packaged
encoder pickles as before.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2


class FastTfidf:
    def __init__(self, vectorizer: TfidfVectorizer) -> None:
        self.analyze = vectorizer.build_analyzer()
        self.vocabulary = dict(vectorizer.vocabulary_)
        self.width = len(self.vocabulary)
        self.dtype = vectorizer.dtype
        self.sublinear = bool(vectorizer.sublinear_tf)
        self.idf = vectorizer.idf_ if vectorizer.use_idf else None
        self.l2 = vectorizer.norm == "l2"

    def sparse(self, documents: Any) -> sp.csr_matrix:
        """(documents, vocabulary) in the vectorizer's dtype, equal to
        `vectorizer.transform(documents)`."""
        indices: list[int] = []
        counts: list[int] = []
        indptr = [0]
        vocabulary = self.vocabulary
        for document in documents:
            found: dict[int, int] = {}
            for token in self.analyze(document):
                j = vocabulary.get(token)
                if j is not None:
                    found[j] = found.get(j, 0) + 1
            for j in sorted(found):
                indices.append(j)
                counts.append(found[j])
            indptr.append(len(indices))
        data = np.asarray(counts, dtype=np.intc).astype(self.dtype)
        index = np.asarray(indices, dtype=np.int32)
        if self.sublinear:
            np.log(data, data)
            data += 1.0
        if self.idf is not None:
            data *= self.idf[index]
        matrix = sp.csr_matrix((data, index, np.asarray(indptr, dtype=np.int32)),
                              shape=(len(indptr) - 1, self.width), dtype=self.dtype)
        if self.l2:
            inplace_csr_row_normalize_l2(matrix)
        return matrix


_MADE: WeakKeyDictionary[Any, FastTfidf | None] = WeakKeyDictionary()


def fast_tfidf(vectorizer: Any) -> FastTfidf | None:
    """The fast transform of `vectorizer` (made once per fitted vectorizer), or None when
    its settings are not the ones this reproduces exactly."""
    try:
        return _MADE[vectorizer]
    except (KeyError, TypeError):
        pass
    fast = None
    if type(vectorizer) is TfidfVectorizer and not vectorizer.binary \
            and vectorizer.norm in ("l2", None) and vectorizer.analyzer in ("word", "char") \
            and hasattr(vectorizer, "vocabulary_") and vectorizer.vocabulary is None:
        fast = FastTfidf(vectorizer)
        _MADE[vectorizer] = fast
    return fast


def tfidf_transform(vectorizer: Any, documents: Any):
    """`vectorizer.transform(documents)`, through the fast form when there is one."""
    fast = fast_tfidf(vectorizer)
    return fast.sparse(documents) if fast is not None else vectorizer.transform(documents)
