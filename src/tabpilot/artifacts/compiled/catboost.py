"""CatBoost models -> Forest, read from CatBoost's JSON export.

CatBoost's trees are oblivious: split d of a tree gives bit d of the leaf index. A split
reads a float feature (`x > border` in float32), a one-hot category (`value == hash`), or
a CTR: a target statistic of the row's categories (and binarised floats), looked up by a
hash of that projection. tabpilot hands CatBoost categories as the strings of integer
codes ("-1" for missing or unseen, see models/catboost.py), so every category a model
can meet is known: their CatBoost hashes are read once from CatBoost's own Python export
and the kernel works on codes. CTR values are computed here, in float32 like CatBoost,
for every bucket of the model's tables; the kernel finds the bucket by the same hash.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np

from tabpilot.artifacts.compiled.builder import ForestBuilder
from tabpilot.artifacts.compiled.forest import (
    CTR_CAT,
    CTR_ELEM,
    CTR_EQUAL,
    CTR_GREATER,
    EQUAL,
    GREATER,
    GREATER_NAN,
    SPLIT,
    Unsupported,
)
from tabpilot.tasks import ProblemType

_LINKS = {(ProblemType.BINARY, "Logloss"): "sigmoid",
          (ProblemType.MULTICLASS, "MultiClass"): "softmax",
          (ProblemType.REGRESSION, "RMSE"): "identity"}
_NO_CODE = -2.0  # a one-hot value no code hashes to: the split never fires
_HASHES: dict[str, int] = {}  # CatBoost's hash of a category string (the same for any model)


def add(builder: ForestBuilder, fitted, problem_type: ProblemType) -> None:
    model, cats = fitted.model, list(fitted.categorical_indices)
    spec = _export(model)
    loss = spec["model_info"]["params"]["loss_function"]["type"]
    link = _LINKS.get((problem_type, loss))
    if link is None:
        raise Unsupported(f"CatBoost loss {loss!r} for {problem_type.value}")
    if "non_symmetric_trees" in spec or "oblivious_trees" not in spec:
        raise Unsupported("CatBoost non-symmetric trees")
    info = spec["features_info"]
    if info.get("text_features") or info.get("embedding_features"):
        raise Unsupported("CatBoost text or embedding features")
    cat_set = set(cats)
    floats = [i for i in range(builder.n_cols) if i not in cat_set]  # models/catboost._pool
    scale, bias = spec.get("scale_and_bias", [1.0, [0.0]])
    bias = list(bias) if isinstance(bias, list) else [bias]
    dim = len(bias) if link == "softmax" else 1
    slot = builder.add_member(dim, link, scale=float(scale), bias=bias * (dim // len(bias)))
    binary = _binary_features(info)
    codes = _codes(builder, model, cats)
    ctr_columns: dict[int, int] = {}
    for tree in spec["oblivious_trees"]:
        tree_splits = tree.get("splits") or []  # none in a tree of depth 0
        splits = np.zeros(len(tree_splits), dtype=SPLIT)
        for d, split in enumerate(tree_splits):
            kind, index, border = binary[split["split_index"]]
            _consistent(split, kind, index, border, info)
            if kind == "float":
                nan_true = info["float_features"][index].get("nan_value_treatment") == "AsTrue"
                splits[d] = (np.float32(border), GREATER_NAN if nan_true else GREATER,
                             floats[index])
            elif kind == "onehot":
                splits[d] = (codes.get(int(border), _NO_CODE), EQUAL, cats[index])
            else:
                if index not in ctr_columns:
                    ctr_columns[index] = _add_ctr(builder, spec, index, floats, cats, codes)
                splits[d] = (np.float32(border), GREATER, ctr_columns[index])
        leaves = np.asarray(tree["leaf_values"], dtype=np.float64)
        if len(leaves) != dim << len(splits):
            raise Unsupported("CatBoost leaf layout")
        builder.add_oblivious(splits, leaves, slot, dim)
    builder.float32_inputs = True


def _export(model) -> dict:
    with tempfile.TemporaryDirectory(prefix="tabpilot-catboost-") as tmp:
        path = Path(tmp) / "model.json"
        model.save_model(str(path), format="json")
        return json.loads(path.read_text())


def _binary_features(info: dict) -> list[tuple[str, int, float]]:
    """CatBoost numbers binary splits: float borders, one-hot values, then CTR borders."""
    out: list[tuple[str, int, float]] = []
    for f in info.get("float_features", []):
        out += [("float", f["feature_index"], b) for b in f.get("borders") or []]
    for c in info.get("categorical_features", []):
        out += [("onehot", c["feature_index"], v) for v in c.get("values") or []]
    for i, ctr in enumerate(info.get("ctrs", [])):
        out += [("ctr", i, b) for b in ctr["borders"]]
    return out


def _consistent(split: dict, kind: str, index: int, border: float, info: dict) -> None:
    """The split agrees with the numbering (guards against a change of CatBoost's format)."""
    ok = {
        "FloatFeature": kind == "float" and split.get("float_feature_index") == index
        and split.get("border") == border,
        "OneHotFeature": kind == "onehot" and split.get("cat_feature_index") == index
        and split.get("value") == border,
        "OnlineCtr": kind == "ctr" and split.get("border") == border
        and info["ctrs"][index]["target_border_idx"] == split.get("ctr_target_border_idx"),
    }.get(split.get("split_type"), False)
    if not ok:
        raise Unsupported(f"CatBoost split {split} does not match the model's feature list")


def _codes(builder: ForestBuilder, model, cats: list[int]) -> dict[int, float]:
    """hash -> code for every code a categorical column can carry; fills the hash table."""
    if not cats:  # numbers only: no category is ever hashed
        return {}
    n = builder.n_codes + 1  # codes -1 .. n_codes - 1
    names = [str(c) for c in range(-1, n - 1)]
    missing = [s for s in names if s not in _HASHES]
    if missing:
        _HASHES.update(_catboost_hashes(model, missing, builder.n_cols, cats))
    builder.hash_values = np.array([_HASHES[s] for s in names], dtype=np.int64)
    return {_HASHES[s]: float(code) for code, s in zip(range(-1, n - 1), names, strict=True)}


def _catboost_hashes(model, strings: list[str], n_cols: int, cats: list[int]) -> dict[str, int]:
    from tabpilot.models.catboost import _pool

    if not cats:
        return {}
    X = np.zeros((len(strings), n_cols))
    codes = np.array([int(s) for s in strings], dtype=np.float64)
    X[:, cats] = codes[:, None]
    with tempfile.TemporaryDirectory(prefix="tabpilot-catboost-") as tmp:
        path = Path(tmp) / "model.py"
        model.save_model(str(path), format="python", pool=_pool(X, cats))
        text = path.read_text()
    block = re.search(r"cat_features_hashes = \{(.*?)\n\}", text, re.S)
    if block is None:
        raise Unsupported("CatBoost's Python export has no category hashes")
    pairs = re.findall(r'"((?:[^"\\]|\\.)*)":\s*(-?\d+)', block.group(1))
    found = {s: int(h) for s, h in pairs}
    if not set(strings) <= set(found):
        raise Unsupported("CatBoost's Python export lacks some category hashes")
    return found


def _add_ctr(builder: ForestBuilder, spec: dict, index: int, floats: list[int],
             cats: list[int], codes: dict[int, float]) -> int:
    ctr = spec["features_info"]["ctrs"][index]
    order = {"cat_feature_value": 0, "float_feature": 1, "cat_feature_exact_value": 2}
    elems = sorted(ctr["elements"], key=lambda e: order.get(e["combination_element"], 3))
    rows = np.zeros(len(elems), dtype=CTR_ELEM)
    n_hashes = len(builder.hash_values)
    for i, e in enumerate(elems):
        kind = e["combination_element"]
        if kind == "cat_feature_value":
            rows[i] = (0.0, CTR_CAT, cats[e["cat_feature_index"]], 0, n_hashes)
        elif kind == "float_feature":
            rows[i] = (np.float32(e["border"]), CTR_GREATER, floats[e["float_feature_index"]], 0, 0)
        elif kind == "cat_feature_exact_value":
            rows[i] = (codes.get(int(e["value"]), _NO_CODE), CTR_EQUAL,
                       cats[e["cat_feature_index"]], 0, 0)
        else:
            raise Unsupported(f"CatBoost CTR element {kind!r}")
    table = spec["ctr_data"][ctr["identifier"]]
    stride = int(table["hash_stride"])
    flat = table["hash_map"]
    keys = np.array([int(h) for h in flat[0::stride]], dtype=np.uint64)
    history = np.array([flat[i::stride] for i in range(1, stride)], dtype=np.float64).T
    values = _ctr_values(ctr, history, float(table.get("counter_denominator", 0)))
    default = float(_calc(ctr, np.float32(0), np.float32(0)))
    return builder.add_ctr(rows, keys, values.astype(np.float64), default)


def _ctr_values(ctr: dict, history: np.ndarray, denominator: float) -> np.ndarray:
    """Each bucket's CTR value, as CatBoost's applier computes it (float32)."""
    kind, k = ctr["ctr_type"], int(ctr.get("target_border_idx", 0))
    h = history.astype(np.float32)
    if kind in ("BinarizedTargetMeanValue", "FloatTargetMeanValue"):
        good, total = h[:, 0], h[:, 1]
    elif kind in ("Counter", "FeatureFreq"):
        good, total = h[:, 0], np.full(len(h), denominator, dtype=np.float32)
    elif kind == "Buckets":
        good, total = h[:, k], h.sum(axis=1, dtype=np.float32)
    elif kind == "Borders" and h.shape[1] > 2:
        good = h[:, k + 1:].sum(axis=1, dtype=np.float32)
        total = h[:, :k + 1].sum(axis=1, dtype=np.float32) + good
    elif kind == "Borders":
        good, total = h[:, 1], h[:, 0] + h[:, 1]
    else:
        raise Unsupported(f"CatBoost CTR type {kind!r}")
    return _calc(ctr, good, total)


def _calc(ctr: dict, good, total):
    f = np.float32
    value = (f(good) + f(ctr["prior_numerator"])) / (f(total) + f(ctr["prior_denomerator"]))
    return (f(value) + f(ctr["shift"])) * f(ctr["scale"])
