"""LightGBM boosters -> Forest, read from the model's text form (model_to_string).

The text form holds each tree as flat arrays (LightGBM's own layout: children >= 0 are
nodes, ~leaf otherwise), so conversion is parsing, not walking. Decisions follow
LightGBM's tree.h: `x <= threshold` goes left; a missing value goes the default way
(missing_type NaN) or counts as 0.0 (None); zero_as_missing models are not compiled;
a categorical node sends a category left when its bit is set, NaN and negative codes
right.
"""

from __future__ import annotations

import numpy as np

from tabpilot.artifacts.compiled.builder import CATEGORICAL, DEFAULT_LEFT, ForestBuilder
from tabpilot.artifacts.compiled.forest import Unsupported
from tabpilot.tasks import ProblemType

_CATEGORICAL_MASK, _DEFAULT_LEFT_MASK = 1, 2
_MISSING_NONE, _MISSING_ZERO = 0, 1


def add(builder: ForestBuilder, booster, problem_type: ProblemType) -> None:
    header, trees = _parse(booster.model_to_string())
    objective = header.get("objective", "").split()
    k = int(header.get("num_tree_per_iteration", "1"))
    name = objective[0] if objective else ""
    if problem_type is ProblemType.BINARY and name == "binary":
        options = dict(o.split(":", 1) for o in objective[1:] if ":" in o)
        slot = builder.add_member(1, "sigmoid", scale=float(options.get("sigmoid", 1.0)))
    elif problem_type is ProblemType.MULTICLASS and name == "multiclass":
        slot = builder.add_member(k, "softmax")
    elif problem_type is ProblemType.REGRESSION and name == "regression":
        slot = builder.add_member(1, "identity")
    elif problem_type is ProblemType.REGRESSION and name == "tweedie":
        slot = builder.add_member(1, "exp")  # the raw sum is the log of the mean
    else:
        raise Unsupported(f"LightGBM objective {' '.join(objective)!r} for {problem_type.value}")
    if header.get("average_output") is not None:
        raise Unsupported("LightGBM random-forest mode (average_output)")
    for i, tree in enumerate(trees):
        _add_tree(builder, tree, slot + (i % k))


def _parse(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    header: dict[str, str] = {}
    trees: list[dict[str, str]] = []
    current = header
    for line in text.splitlines():
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
        elif line.startswith("end of trees"):
            break
        elif "=" in line:
            key, value = line.split("=", 1)
            current[key] = value
        elif line.strip() and current is header:
            current[line.strip()] = ""
    return header, trees


def _array(tree: dict[str, str], key: str, dtype) -> np.ndarray:
    text = tree.get(key, "").strip()
    return np.array(text.split(), dtype=dtype) if text else np.zeros(0, dtype=dtype)


def _add_tree(builder: ForestBuilder, tree: dict[str, str], slot: int) -> None:
    if tree.get("is_linear", "0") != "0":
        raise Unsupported("LightGBM linear trees")
    leaves = _array(tree, "leaf_value", np.float64)
    if int(tree["num_leaves"]) == 1:
        builder.add_tree(*(np.zeros(0),) * 5, leaves, slot)
        return
    feature = _array(tree, "split_feature", np.int32)
    threshold = _array(tree, "threshold", np.float64)
    decision = _array(tree, "decision_type", np.int32)
    left, right = _array(tree, "left_child", np.int64), _array(tree, "right_child", np.int64)
    bounds = _array(tree, "cat_boundaries", np.int64)
    words = _array(tree, "cat_threshold", np.uint64).astype(np.uint32)
    missing = (decision >> 2) & 3
    categorical = (decision & _CATEGORICAL_MASK) != 0
    default_left = (decision & _DEFAULT_LEFT_MASK) != 0
    # missing_type None: NaN is compared as 0.0, so it goes where 0.0 goes
    default_left = np.where(missing == _MISSING_NONE, 0.0 <= threshold, default_left)
    if (missing == _MISSING_ZERO).any():
        raise Unsupported("LightGBM zero_as_missing")
    flags = np.where(default_left, DEFAULT_LEFT, 0)
    cat_sets: dict[int, np.ndarray] = {}
    for i in np.flatnonzero(categorical):
        c = int(threshold[i])
        cat_sets[int(i)] = words[bounds[c]:bounds[c + 1]]
        flags[i] = CATEGORICAL  # NaN goes right
    builder.add_tree(feature, threshold, left, right, flags, leaves, slot, cat_sets)
