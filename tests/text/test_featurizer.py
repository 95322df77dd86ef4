"""TextFeaturizer: fit / transform, one row as in a batch, pickles, tiny corpora; a text
candidate packaged, verified and loaded like any model directory."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from textlib import reviews

from tabpilot.artifacts import package
from tabpilot.artifacts.predictor import Predictor
from tabpilot.data.schema import ColumnKind, Schema
from tabpilot.errors import ModelIntegrityError
from tabpilot.features import build_encoder
from tabpilot.models import FAMILIES, FitData, get_family
from tabpilot.tasks import ProblemType
from tabpilot.text import TEXT_FAMILIES
from tabpilot.text.featurizer import TextFeaturizer

SCHEMA = Schema({"review_id": ColumnKind.ID, "review": ColumnKind.TEXT})
DF = reviews(240, classes=("good", "bad", "meh"))


def test_sparse_word_and_char_ngrams() -> None:
    enc = build_encoder(SCHEMA, "text_tfidf").fit(DF)  # text_char_logistic's
    assert isinstance(enc, TextFeaturizer) and list(enc.text) == ["review"]
    X = enc.transform(DF)
    assert sp.issparse(X) and X.shape == (len(DF), enc.n_features_out_)
    names = enc.get_feature_names_out()
    assert len(names) == enc.n_features_out_
    assert "word:wonderful" in names and any(n.startswith("char:") for n in names)
    # each block is L2-normalised: a row holds two unit vectors
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1))).ravel()
    np.testing.assert_allclose(norms, np.sqrt(2), rtol=1e-5)


def test_one_row_is_encoded_as_in_a_batch_and_missing_text_is_empty() -> None:
    enc = build_encoder(SCHEMA, "text_svd").fit(DF)
    batch = enc.transform(DF)
    assert isinstance(batch, np.ndarray) and batch.shape == (len(DF), enc.n_features_out_)
    assert enc.n_features_out_ <= 128
    np.testing.assert_allclose(enc.transform(DF.iloc[[7]]), batch[[7]], rtol=1e-5, atol=1e-6)
    blank = enc.transform(pd.DataFrame({"review": [None, float("nan"), ""]}))
    np.testing.assert_allclose(blank, 0.0, atol=1e-6)


def test_pickle_round_trip_and_a_tiny_corpus() -> None:
    tiny = pd.DataFrame({"review": ["great fit", "awful fabric", "a"]})
    enc = TextFeaturizer(text=["review"]).fit(tiny)  # min_df 2 would keep nothing
    assert enc.n_features_out_ > 0
    again = pickle.loads(pickle.dumps(enc))
    assert (again.transform(tiny) != enc.transform(tiny)).nnz == 0
    with pytest.raises(ValueError, match="at least one text column"):
        TextFeaturizer().fit(tiny)


def _fitted(name: str, ptype: ProblemType, y: np.ndarray) -> Predictor:
    family = get_family(name)
    enc = build_encoder(SCHEMA, family.style).fit(DF)
    data = FitData(X=enc.transform(DF), y=y, problem_type=ptype, n_classes=len(np.unique(y)),
                   categorical_indices=[])
    params = dict(family.portfolio(ptype)[0])
    if name == "text_lightgbm":
        params["n_estimators"] = 60  # no validation rows to stop early on
    est = family.fit(params, data)
    classes = sorted(DF["label"].unique())
    return Predictor(enc, name, [est], ptype, ["review"], classes, None)


@pytest.mark.parametrize("name", TEXT_FAMILIES)
def test_every_text_family_learns_the_planted_words(name: str) -> None:
    classes = sorted(DF["label"].unique())
    y = DF["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    predictor = _fitted(name, ProblemType.MULTICLASS, y)
    proba = predictor.raw_predict(DF)
    assert proba.shape == (len(DF), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert (proba.argmax(axis=1) == y).mean() > 0.85
    assert name in FAMILIES and name not in list(FAMILIES)  # found, not listed for tables


def test_a_text_candidate_is_packaged_verified_and_loaded(tmp_path) -> None:
    classes = sorted(DF["label"].unique())
    y = DF["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    predictor = _fitted("text_logistic", ProblemType.MULTICLASS, y)
    meta = {"features": ["review"], "input_schema": SCHEMA.to_dict(), "algorithm": "x"}
    out = package.save(predictor, meta, tmp_path / "model", sample=DF.head(20))
    model = package.load(out)
    assert model.metadata["compiled"]["status"] == "python"  # no compiled path for text
    row = {"review": "Wonderful and flattering, love it"}
    assert model.predict(row)[0] == predictor.predict(pd.DataFrame([row]))[0] == "good"
    pickle_file = out / package.PREDICTOR
    pickle_file.write_bytes(pickle_file.read_bytes() + b"x")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        package.load(out)
