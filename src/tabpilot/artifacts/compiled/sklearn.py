"""scikit-learn RandomForest / ExtraTrees (classifier, regressor) -> Forest.

Decisions follow scikit-learn's tree code: the row is cast to float32 and
`x <= threshold` (a float64 threshold) goes left; NaN goes the way missing_go_to_left
says (tabpilot's "ordinal" encoder imputes, so none reaches these forests in practice).
A tree's leaf holds what `predict_proba` returns for it, the class fractions (or the
value of a regressor); the forest sums its trees in order and divides by their count,
so one member per forest: class fractions as `leaf_dim` values per leaf, or one value.
A binary forest keeps only class 1's fraction in one slot.
"""

from __future__ import annotations

import numpy as np

from tabpilot.artifacts.compiled.builder import DEFAULT_LEFT, ForestBuilder
from tabpilot.artifacts.compiled.forest import Unsupported
from tabpilot.tasks import ProblemType

_LEAF = -1  # children of a leaf in sklearn's arrays


def add(builder: ForestBuilder, forest, problem_type: ProblemType) -> None:
    trees = list(getattr(forest, "estimators_", []))
    if not trees or getattr(forest, "n_outputs_", 1) != 1:
        raise Unsupported("a scikit-learn forest without trees or with several outputs")
    builder.float32_inputs = True  # sklearn compares float32 inputs
    columns = _class_columns(forest, problem_type)
    if problem_type is ProblemType.MULTICLASS:
        builder.leaf_dim = int(getattr(forest, "n_classes_total_", 0) or len(forest.classes_))
    elif builder.leaf_dim != 1:
        raise Unsupported("mixed leaf widths in one forest")
    dim = builder.leaf_dim
    link = "identity" if problem_type is ProblemType.REGRESSION else "probability"
    slot = builder.add_member(dim, link, scale=1.0 / len(trees))
    for tree in trees:
        _add_tree(builder, tree.tree_, columns, slot)


def _class_columns(forest, problem_type: ProblemType) -> np.ndarray | None:
    """Where each of the forest's classes goes in the leaf vector (None for regression).

    A fold may have lacked some classes: its probabilities widen to every class, as
    models.base.all_classes does; a binary forest keeps class 1 only (-1: absent).
    """
    if problem_type is ProblemType.REGRESSION:
        return None
    classes = np.asarray(forest.classes_, dtype=np.int64)
    total = int(getattr(forest, "n_classes_total_", 0) or 0)
    if not total or total == len(classes):
        classes = np.arange(len(classes))
    if problem_type is ProblemType.BINARY:
        return np.where(classes == 1, 0, -1)
    return classes


def _add_tree(builder: ForestBuilder, tree, columns: np.ndarray | None, slot: int) -> None:
    left = np.asarray(tree.children_left, dtype=np.int64)
    right = np.asarray(tree.children_right, dtype=np.int64)
    value = np.asarray(tree.value, dtype=np.float64)[:, 0, :]
    is_leaf = left == _LEAF
    if columns is None:
        values = value[:, 0]
    else:
        values = np.zeros((len(value), builder.leaf_dim))
        kept = columns >= 0
        values[:, columns[kept]] = value[:, np.flatnonzero(kept)]
    if is_leaf[0]:  # a tree that is one leaf
        builder.add_tree(*(np.zeros(0),) * 5, values[:1], slot)
        return
    # sklearn numbers nodes and leaves together; the builder wants them apart
    inner, leaves = np.flatnonzero(~is_leaf), np.flatnonzero(is_leaf)
    new = np.zeros(len(left), dtype=np.int64)
    new[inner], new[leaves] = np.arange(len(inner)), ~np.arange(len(leaves))
    missing_left = getattr(tree, "missing_go_to_left", None)
    flags = np.zeros(len(inner), dtype=np.int64)
    if missing_left is not None:
        flags = np.where(np.asarray(missing_left, dtype=bool)[inner], DEFAULT_LEFT, 0)
    builder.add_tree(np.asarray(tree.feature, dtype=np.int64)[inner],
                     np.asarray(tree.threshold, dtype=np.float64)[inner],
                     new[left[inner]], new[right[inner]], flags, values[leaves], slot)
