"""XGBoost boosters -> Forest, read from the model's JSON (save_raw("json")).

XGBoost compares in float32 (`x < split_condition` goes left), adds leaf values in
float32 starting from the base margin, and sends a missing value the default way. A
categorical node sends the categories of its set right and every other value left; the
kernel's categorical nodes send the set left, so those nodes get their children swapped.
"""

from __future__ import annotations

import json
import math

import numpy as np

from tabpilot.artifacts.compiled.builder import CATEGORICAL, DEFAULT_LEFT, STRICT, ForestBuilder
from tabpilot.artifacts.compiled.forest import Unsupported
from tabpilot.tasks import ProblemType

_LINKS = {
    (ProblemType.BINARY, "binary:logistic"): (1, "sigmoid"),
    (ProblemType.MULTICLASS, "multi:softprob"): (0, "softmax"),
    (ProblemType.REGRESSION, "reg:squarederror"): (1, "identity"),
    (ProblemType.REGRESSION, "reg:tweedie"): (1, "exp"),
}


def add(builder: ForestBuilder, booster, problem_type: ProblemType) -> None:
    learner = json.loads(bytes(booster.save_raw("json")))["learner"]
    objective = learner["objective"]["name"]
    if (problem_type, objective) not in _LINKS:
        raise Unsupported(f"XGBoost objective {objective!r} for {problem_type.value}")
    dim, link = _LINKS[(problem_type, objective)]
    params = learner["learner_model_param"]
    dim = dim or int(params["num_class"])
    gbm = learner["gradient_booster"]
    if gbm["name"] != "gbtree":
        raise Unsupported(f"XGBoost booster {gbm['name']!r}")
    base = _floats(params["base_score"])
    if len(base) == 1:
        base = base * dim
    # the base score is a prediction (XGBoost 2 and later); the sums start at its margin
    if link == "sigmoid":  # a probability: its logit
        base = [math.log(p / (1.0 - p)) for p in base]
    elif link == "exp":  # a Tweedie model's mean: its log
        base = [math.log(b) for b in base]
    builder.float32_inputs = builder.float32_sums = True
    slot = builder.add_member(dim, link, init=[float(np.float32(b)) for b in base])
    model = gbm["model"]
    for tree, group in zip(model["trees"], model["tree_info"], strict=True):
        _add_tree(builder, tree, slot + int(group))


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.strip("[]").split(",")]


def _add_tree(builder: ForestBuilder, tree: dict, slot: int) -> None:
    if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
        raise Unsupported("XGBoost multi-output trees")
    left = np.asarray(tree["left_children"], dtype=np.int64)
    right = np.asarray(tree["right_children"], dtype=np.int64)
    values = np.asarray(tree["split_conditions"], dtype=np.float32).astype(np.float64)
    leaf = left == -1
    if leaf[0]:  # a tree that is one leaf
        builder.add_tree(*(np.zeros(0),) * 5, values[:1], slot)
        return
    # XGBoost numbers nodes and leaves together; the builder wants them apart
    inner, leaves = np.flatnonzero(~leaf), np.flatnonzero(leaf)
    new = np.zeros(len(left), dtype=np.int64)
    new[inner], new[leaves] = np.arange(len(inner)), ~np.arange(len(leaves))
    left, right = new[left[inner]], new[right[inner]]
    flags = np.where(np.asarray(tree["default_left"], dtype=bool)[inner], DEFAULT_LEFT, 0) | STRICT
    cat_sets: dict[int, np.ndarray] = {}
    categories = np.asarray(tree["categories"], dtype=np.int64)
    for node, begin, size in zip(tree["categories_nodes"], tree["categories_segments"],
                                 tree["categories_sizes"], strict=True):
        members = categories[begin:begin + size]
        words = np.zeros(int(members.max()) // 32 + 1 if size else 1, dtype=np.uint32)
        np.bitwise_or.at(words, members // 32, (1 << (members % 32)).astype(np.uint32))
        i = int(new[node])
        cat_sets[i] = words
        left[i], right[i] = right[i], left[i]
        flags[i] = CATEGORICAL | (0 if flags[i] & DEFAULT_LEFT else DEFAULT_LEFT)
    features = np.asarray(tree["split_indices"], dtype=np.int64)[inner]
    builder.add_tree(features, values[inner], left, right, flags, values[leaves], slot, cat_sets)
