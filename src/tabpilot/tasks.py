"""Problem types and how one is inferred from the target column."""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd

from tabpilot.errors import TargetError, shown

MAX_CLASSES_FOR_INTEGER_TARGET = 20
# Autopilot V2's TextClassification: a request-level problem type. The job it makes is
# binary (2 labels) or multiclass underneath, inferred from the target like any other;
# its one feature is the text column (config.JobRequest.text_column)
TEXT_CLASSIFICATION = "text-classification"


def is_text_classification(value: object) -> bool:
    """Whether a problem type as given ("text-classification", "TextClassification",
    "text_classification") asks for text classification."""
    return isinstance(value, str) and \
        value.strip().lower().replace("_", "").replace("-", "") == "textclassification"


class ProblemType(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"

    @property
    def is_classification(self) -> bool:
        return self is not ProblemType.REGRESSION

    @property
    def autopilot_name(self) -> str:
        return {
            ProblemType.BINARY: "BinaryClassification",
            ProblemType.MULTICLASS: "MulticlassClassification",
            ProblemType.REGRESSION: "Regression",
        }[self]

    @classmethod
    def parse(cls, value: str) -> ProblemType:
        aliases = {
            "binaryclassification": cls.BINARY,
            "multiclassclassification": cls.MULTICLASS,
            "classification": None,
        }
        key = value.strip().lower().replace("_", "").replace("-", "")
        for member in cls:
            if key == member.value:
                return member
        if aliases.get(key) is not None:
            return aliases[key]  # type: ignore[return-value]
        from tabpilot.errors import ConfigError

        raise ConfigError(
            f"unknown problem type {value!r}; use one of: binary, multiclass, regression, "
            f"{TEXT_CLASSIFICATION}"
        )


def infer_problem_type(target: pd.Series) -> ProblemType:
    """Guess the problem type from a target with its missing values already removed."""
    return infer_with_reason(target)[0]


def infer_with_reason(target: pd.Series) -> tuple[ProblemType, str]:
    """The problem type of a target (missing values removed) and why, in words a user can
    check: "2 distinct values -> binary"."""
    n_unique = target.nunique(dropna=True)
    if n_unique < 2:
        only = target.iloc[0] if len(target) else None
        raise TargetError(
            f"target {target.name!r} has a single value ({shown(only)}); "
            "a model needs at least two classes or varying numbers to learn from"
        )
    if n_unique == 2:
        return ProblemType.BINARY, "2 distinct values -> binary"
    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        return ProblemType.MULTICLASS, f"{n_unique} distinct non-numeric values -> multiclass"
    values = target.to_numpy(dtype=float)
    integral = bool(np.all(np.isclose(values, np.round(values))))
    if integral and n_unique <= MAX_CLASSES_FOR_INTEGER_TARGET:
        return ProblemType.MULTICLASS, (f"{n_unique} distinct whole numbers (at most "
                                        f"{MAX_CLASSES_FOR_INTEGER_TARGET}) -> multiclass")
    kind = "whole numbers" if integral else "numbers"
    return ProblemType.REGRESSION, f"{n_unique:,} distinct {kind} -> regression"
