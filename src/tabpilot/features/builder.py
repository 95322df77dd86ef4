"""Pick the preprocessing that suits an algorithm family."""

from __future__ import annotations

from typing import Any

from tabpilot.data.schema import ColumnKind, Schema
from tabpilot.features.encoder import TabularEncoder

STYLES = {
    # native categoricals, missing values left to the algorithm
    "native": dict(categorical_encoding="codes", scale=False, text_max_features=300),
    # trees without native categoricals
    "ordinal": dict(categorical_encoding="ordinal", scale=True, text_max_features=300),
    # linear models and neural networks
    "onehot": dict(categorical_encoding="onehot", scale=True, text_max_features=5000),
}


# text families' styles (tabpilot/text): TF-IDF n-grams, sparse or SVD-reduced
# (the SVD is of word n-grams only: character n-grams would triple its cost for little)
TEXT_STYLES = {"text_words": dict(char_ngrams=None), "text_tfidf": {},
               "text_svd": dict(svd_components=128, char_ngrams=None, max_word_features=30_000)}


def build_encoder(schema: Schema, style: str) -> Any:
    """The unfitted encoder of a family's style: a TabularEncoder, or for a text family a
    TextFeaturizer of the schema's text columns (imported here only: tabpilot.text builds on
    this package)."""
    if style in TEXT_STYLES:
        from tabpilot.text.featurizer import TextFeaturizer

        return TextFeaturizer(text=schema.columns(ColumnKind.TEXT), **TEXT_STYLES[style])
    return TabularEncoder(
        numeric=schema.columns(ColumnKind.NUMERIC),
        categorical=schema.columns(ColumnKind.CATEGORICAL),
        datetime=schema.columns(ColumnKind.DATETIME),
        text=schema.columns(ColumnKind.TEXT),
        **STYLES[style],
    )
