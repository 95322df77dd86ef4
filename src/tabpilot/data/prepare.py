"""Validate a table against a request and turn it into training inputs."""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.data.read import read_table
from tabpilot.data.schema import (
    ColumnKind,
    Schema,
    check_feature_specification,
    infer_schema,
    load_feature_specification,
)
from tabpilot.errors import ConfigError, DataError, TargetError, shown
from tabpilot.metrics import Metric, resolve_metric
from tabpilot.tasks import ProblemType, infer_with_reason

log = logging.getLogger("tabpilot.data.prepare")

MIN_ROWS = 20


@dataclass
class Prepared:
    """Training inputs: raw feature columns, the encoded target, and what was decided."""

    X: pd.DataFrame
    y: np.ndarray  # class index 0..k-1 for classification, float for regression
    problem_type: ProblemType
    metric: Metric
    schema: Schema
    classes: list | None
    weights: np.ndarray | None = None
    dropped_rows: int = 0
    warnings: list[str] = field(default_factory=list)
    # what was inferred rather than given, and why: {"problem_type": reason or "given",
    # "metric": "default for binary" or "given", "feature_types": "inferred" or the file}
    reasons: dict[str, str] = field(default_factory=dict)


def check_target_column(df: pd.DataFrame, target: str) -> None:
    if target in df.columns:
        return
    names = [str(c) for c in df.columns]
    close = difflib.get_close_matches(target, names, n=3, cutoff=0.5)
    lower = [c for c in names if c.lower() == target.lower() and c not in close]
    hints = lower + close
    # names cut short: a 10 MB header line must still give a short one-line message
    listed = ", ".join(n if len(n) <= 40 else f"{n[:37]}..." for n in names[:12])
    hint = f"; did you mean {', '.join(shown(h) for h in hints)}?" if hints else (
        f"; the columns are: {listed}{'...' if len(names) > 12 else ''}")
    raise TargetError(f"target {shown(target)} is not a column of the table{hint}")


def read_training_data(source: Any, target: str, na_values: list[str] | None = None,
                       validation_data: str | None = None) -> tuple[pd.DataFrame, int | None]:
    """The training table, with a separate validation table's rows appended after it.

    Returns the table and how many validation rows end it (None without a validation
    table); those rows then form the validation split.
    """
    # a job only reads the table: sharing the caller's arrays saves a copy of it
    df = read_table(source, na_values, copy=False)
    if not validation_data:
        return df, None
    valid = read_table(validation_data, na_values)
    check_target_column(valid, target)
    missing = [c for c in df.columns if c not in valid.columns]
    if missing:
        raise DataError(f"validation data lacks column(s) {', '.join(missing[:5])}; "
                        "it needs the training table's columns")
    valid = valid.loc[valid[target].notna(), list(df.columns)]
    n_train = int(df[target].notna().sum())
    df = pd.concat([df.loc[df[target].notna()], valid], ignore_index=True)
    if len(valid) == 0 or n_train == 0:
        raise DataError("training and validation data both need rows with a target")
    return df, len(valid)


def prepare(df: pd.DataFrame, target: str, problem_type: ProblemType | None = None,
            metric: str | None = None, sample_weight: str | None = None,
            feature_types_file: str | None = None, text_column: str | None = None
            ) -> Prepared:
    """Check the table and the target, infer the schema and the problem type. With
    `text_column` (text classification) that column is the only feature, read as text."""
    check_target_column(df, target)
    if text_column is not None:
        check_text_column(df, text_column)
    if sample_weight is not None and sample_weight == target:
        # weighting each row by its own label would leak the label into training
        raise ConfigError(f"the sample weight column {shown(sample_weight)} is the target; "
                          "give a separate column of row weights, or leave --sample-weight out")
    notes: list[str] = []
    y_raw = df[target]
    missing = y_raw.isna()
    if missing.all():
        raise TargetError(f"target {target!r} has no values (all {len(df)} are missing); "
                          "choose a column that holds the labels")
    if missing.any():
        df = df.loc[~missing].reset_index(drop=True)
        y_raw = df[target]
    if len(df) < MIN_ROWS:
        raise DataError(f"only {len(df)} usable rows (with a target value); "
                        f"at least {MIN_ROWS} are needed to train and validate a model")
    if missing.any():  # warned only once the table is known to be usable
        msg = f"dropped {int(missing.sum())} rows whose target {target!r} is missing"
        log.warning(msg)
        notes.append(msg)
    inferred, why = infer_with_reason(y_raw)
    ptype = problem_type or inferred
    if text_column is not None and ptype is ProblemType.REGRESSION:
        raise TargetError(f"text classification needs class labels, but target {target!r} "
                          f"holds {why.split(' -> ')[0]}; choose a column of labels, or pass "
                          "--problem-type multiclass to treat each value as a class")
    y, classes = _encode_target(y_raw, ptype, target)
    weights = _weights(df, sample_weight)
    names, types = (None, {})
    if feature_types_file:
        names, types = load_feature_specification(feature_types_file)
        check_feature_specification(df, names, types)
        for special in [target, sample_weight]:
            if special and (special in types or special in (names or [])):
                raise ConfigError(f"the feature types file names {special!r}, which is the "
                                  "target or weight column; remove it from the file")
    drop = [target] + ([sample_weight] if sample_weight else [])
    X = _columns_without(df, drop)
    schema = infer_schema(X, feature_types=types, feature_names=names) if text_column is None \
        else text_schema(X, text_column)
    if not schema.features:
        raise DataError("no usable feature columns remain (all are empty, constant or id-like); "
                        "add informative columns or set their types with --feature-types")
    # TextClassificationJobConfig's one objective metric is Accuracy
    resolved = resolve_metric(metric or ("Accuracy" if text_column else None), ptype)
    default_for = "text classification" if text_column else ptype.value
    reasons = {"problem_type": "given" if problem_type else why,
               "metric": "given" if metric else f"the default for {default_for}",
               "feature_types": f"given in {feature_types_file}" if feature_types_file
               else f"the text column {text_column!r} only" if text_column else "inferred"}
    return Prepared(X, y, ptype, resolved, schema, classes, weights, int(missing.sum()), notes,
                    reasons)


def check_text_column(df: pd.DataFrame, column: str) -> None:
    """The text column of a text classification job exists and holds text, not numbers."""
    if column not in df.columns:
        names = [str(c) for c in df.columns]
        close = difflib.get_close_matches(column, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(shown(h) for h in close)}?" if close else \
            f"; the columns are: {', '.join(names[:12])}"
        raise ConfigError(f"text column {shown(column)} is not a column of the table{hint}")
    values = df[column].dropna()
    filled = values.astype(str).str.strip()
    filled = filled[filled != ""]
    if filled.empty:
        raise DataError(f"text column {shown(column)} holds no text (every value is missing "
                        "or blank); choose the column with the documents")
    if pd.to_numeric(filled, errors="coerce").notna().mean() >= 0.98:
        raise DataError(f"text column {shown(column)} holds numbers ({shown(filled.iloc[0])}), "
                        "not text; choose the column with the documents")


def text_schema(X: pd.DataFrame, column: str) -> Schema:
    """A text job's schema: the text column, every other column left out (as an id)."""
    return Schema({c: ColumnKind.TEXT if c == column else ColumnKind.ID for c in X.columns},
                  overridden=[column])


def _columns_without(df: pd.DataFrame, drop: list[str]) -> pd.DataFrame:
    """`df` without the `drop` columns, sharing the arrays of the others: `df.drop` would
    copy them, as much memory again as the table. Nothing in a job writes into X."""
    dropped = set(drop)
    keep = [i for i, c in enumerate(df.columns) if c not in dropped]
    if not keep:
        return df.drop(columns=drop)
    X = pd.concat([df.iloc[:, i] for i in keep], axis=1, copy=False)
    X.index = df.index
    return X


def _encode_target(y_raw: pd.Series, ptype: ProblemType, target: str
                   ) -> tuple[np.ndarray, list | None]:
    if ptype is ProblemType.REGRESSION:
        values = pd.to_numeric(y_raw, errors="coerce")
        if values.isna().any() or pd.api.types.is_bool_dtype(y_raw):
            bad = y_raw[values.isna()].iloc[0] if values.isna().any() else y_raw.iloc[0]
            raise TargetError(f"regression needs a numeric target, but {target!r} holds "
                              f"{shown(bad)}; use --problem-type binary or multiclass, or "
                              "clean it")
        return values.to_numpy(dtype=np.float64), None
    values = y_raw.to_numpy()
    try:
        classes, codes = np.unique(values, return_inverse=True)
    except TypeError:  # mixed types (1 and "b"): compare them as text
        classes, codes = np.unique(y_raw.astype(str).to_numpy(), return_inverse=True)
    if len(classes) < 2:
        raise TargetError(f"target {target!r} has a single class ({shown(classes[0])}); "
                          "classification needs at least two")
    if ptype is ProblemType.BINARY and len(classes) != 2:
        raise TargetError(f"binary classification needs exactly 2 classes, but {target!r} has "
                          f"{len(classes)}; use --problem-type multiclass")
    return codes.astype(np.int64), [plain_value(c) for c in classes]


def plain_value(value):
    """A numpy scalar as the Python value it holds (for labels in JSON and pickles)."""
    return value.item() if isinstance(value, np.generic) else value


def _weights(df: pd.DataFrame, column: str | None) -> np.ndarray | None:
    if column is None:
        return None
    if column not in df.columns:
        raise DataError(f"sample weight column {column!r} is not in the table")
    w = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
    if np.isnan(w).any() or (w < 0).any():
        raise DataError(f"sample weight column {column!r} must hold non-negative numbers "
                        "in every row")
    return w
