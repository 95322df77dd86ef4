"""Pick the preprocessing that suits an algorithm family."""

from __future__ import annotations

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


def build_encoder(schema: Schema, style: str) -> TabularEncoder:
    return TabularEncoder(
        numeric=schema.columns(ColumnKind.NUMERIC),
        categorical=schema.columns(ColumnKind.CATEGORICAL),
        datetime=schema.columns(ColumnKind.DATETIME),
        text=schema.columns(ColumnKind.TEXT),
        **STYLES[style],
    )
