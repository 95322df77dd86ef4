"""Models for the input-check and prediction tests: real LightGBM pipelines packaged as a
job packages them, with the job's target recorded, on small generated tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tabpilot.artifacts import Predictor, save
from tabpilot.data.schema import infer_schema
from tabpilot.features import build_encoder
from tabpilot.models import FitData, get_family
from tabpilot.tasks import ProblemType

WIDE = 15  # numeric features of the wide model: more than a message lists


def wide_table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """f00..f14 numeric, `label` yes/no from the first two."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, WIDE)), columns=[f"f{i:02d}" for i in range(WIDE)])
    df["label"] = np.where(df["f00"] - df["f01"] > 0, "yes", "no")
    return df


def build(directory: Path, table: pd.DataFrame, target: str,
          ptype: ProblemType = ProblemType.BINARY) -> Path:
    """Fit and package a LightGBM pipeline on `table`, recording `target` as a job does."""
    X = table.drop(columns=target)
    schema = infer_schema(X)
    family = get_family("lightgbm")
    encoder = build_encoder(schema, family.style).fit(X)
    if ptype is ProblemType.REGRESSION:
        y, classes, k = table[target].to_numpy(dtype=float), None, 0
    else:
        classes = sorted(table[target].unique().tolist())
        y, k = table[target].map(classes.index).to_numpy(), len(classes)
    params = dict(family.portfolio(ptype)[0], n_estimators=30, min_child_samples=5)
    est = family.fit(params, FitData(encoder.transform(X), y, ptype, k,
                                     encoder.categorical_indices_, seed=0))
    threshold = 0.5 if ptype is ProblemType.BINARY else None
    predictor = Predictor(encoder, family.name, [est], ptype, schema.features, classes,
                          threshold)
    meta = {"candidate": directory.parent.name, "algorithm": "LightGBM", "target": target,
            "problem_type": ptype.value, "input_schema": schema.to_dict(),
            "features": schema.features, "classes": classes,
            "objective_metric": "F1" if ptype is ProblemType.BINARY else "MSE"}
    return save(predictor, meta, directory)
