"""A tree ensemble flattened into arrays: the form the native kernel (kernel.c) scores.

A `Forest` holds every tree of every model of a bag, so one kernel call gives all their
raw sums. Each model (a `Member`) owns a range of output slots and says how its sums
become a prediction (link, scale and bias); `Forest.combine` applies that and averages
the members, as `Predictor._raw` averages the fold models. A leaf adds `leaf_dim` values
to consecutive slots (a forest classifier's class fractions), else one.

The family converters (lightgbm.py, xgboost.py, catboost.py, sklearn.py) fill a
`ForestBuilder` (builder.py), which lays the trees out for the kernel.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from tabpilot.tasks import ProblemType

# Must match the structs of kernel.c field for field.
NODE = np.dtype([("mask", "<u4"), ("word", "<u4"), ("child", "<i4", (2,))])
SPLIT = np.dtype([("border", "<f8"), ("kind", "<i4"), ("column", "<i4")])
CTR_ELEM = np.dtype([("border", "<f8"), ("kind", "<i4"), ("column", "<i4"), ("hashes", "<i4"),
                     ("n_hashes", "<i4")])

GREATER, GREATER_NAN, EQUAL = 0, 1, 2  # oblivious split kinds
CTR_CAT, CTR_GREATER, CTR_EQUAL = 0, 1, 2  # CTR projection element kinds

ARRAYS = (
    "init",
    # binary trees
    "n_words", "col_kind", "col_word", "col_words", "edge_begin", "edges", "first_leaf",
    "roots", "slots", "nodes", "leaves",
    # oblivious trees
    "odepth", "osplit_begin", "oleaf_begin", "oslot", "odim", "osplits", "oleaves",
    # CTR columns
    "ctr_elem_begin", "ctr_elems", "ctr_key_begin", "ctr_keys", "ctr_values", "ctr_default",
    "hash_values",
)


class Unsupported(Exception):
    """The model uses something the compiled path does not reproduce; the reason is kept."""


@dataclass
class Member:
    """One model of the bag: raw slots [slot, slot + dim) -> link(scale * sum + bias)."""

    slot: int
    dim: int
    # sigmoid | softmax | identity | exp (a log link) | probability (averaged class fractions)
    link: str
    scale: float = 1.0
    bias: list[float] = field(default_factory=list)


@dataclass
class Forest:
    n_cols: int
    problem_type: ProblemType
    members: list[Member]
    arrays: dict[str, np.ndarray]
    float32_inputs: bool = False
    float32_sums: bool = False
    leaf_dim: int = 1
    zeros_missing: bool = False  # read exact zeros as missing (XGBoost on sparse input)

    @property
    def n_slots(self) -> int:
        return len(self.arrays["init"])

    @property
    def n_ctrs(self) -> int:
        return len(self.arrays["ctr_default"])

    def combine(self, raw: np.ndarray) -> np.ndarray:
        """Raw sums (rows, slots) -> probabilities (rows, classes) or values (rows,)."""
        first = self.members[0]
        if not self._side_by_side():
            return np.mean([_apply(raw, m) for m in self.members], axis=0)
        # the models of a bag share link and width and sit side by side: all at once
        n, k, d = raw.shape[0], len(self.members), first.dim
        z = raw[:, :k * d].reshape(n, k, d)
        if any(m.scale != 1.0 or any(m.bias) for m in self.members):
            z = z * np.array([[m.scale] for m in self.members]) + \
                np.array([m.bias for m in self.members])
        if first.link == "sigmoid":
            p = (1.0 / (1.0 + np.exp(-z[:, :, 0]))).mean(axis=1)
            return np.column_stack([1.0 - p, p])
        if first.link == "softmax":
            e = np.exp(z - z.max(axis=2, keepdims=True))
            return (e / e.sum(axis=2, keepdims=True)).mean(axis=1)
        if first.link == "probability":
            p = z.mean(axis=1)
            return np.column_stack([1.0 - p[:, 0], p[:, 0]]) if d == 1 else p
        if first.link == "exp":
            return np.exp(z[:, :, 0]).mean(axis=1)
        return z[:, :, 0].mean(axis=1)

    def _side_by_side(self) -> bool:
        first = self.members[0]
        return all(m.link == first.link and m.dim == first.dim and m.slot == i * first.dim
                   for i, m in enumerate(self.members))

    # -- storage: one .npz, no pickles ----------------------------------------------------
    def save(self, path) -> None:
        meta = {"n_cols": self.n_cols, "problem_type": self.problem_type.value,
                "members": [asdict(m) for m in self.members],
                "float32_inputs": self.float32_inputs, "float32_sums": self.float32_sums,
                "leaf_dim": self.leaf_dim, "zeros_missing": self.zeros_missing}
        blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with open(path, "wb") as f:
            np.savez(f, meta=blob, **self.arrays)

    @classmethod
    def load(cls, path) -> Forest:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes().decode())
            arrays = {name: data[name] for name in ARRAYS}
        return cls(meta["n_cols"], ProblemType(meta["problem_type"]),
                   [Member(**m) for m in meta["members"]], arrays, meta["float32_inputs"],
                   meta["float32_sums"], meta.get("leaf_dim", 1), meta.get("zeros_missing", False))


def _apply(raw: np.ndarray, m: Member) -> np.ndarray:
    """One member's prediction from the raw sums."""
    z = m.scale * raw[:, m.slot:m.slot + m.dim] + np.asarray(m.bias)
    if m.link == "sigmoid":
        p = 1.0 / (1.0 + np.exp(-z[:, 0]))
        return np.column_stack([1.0 - p, p])
    if m.link == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if m.link == "probability":
        return np.column_stack([1.0 - z[:, 0], z[:, 0]]) if m.dim == 1 else z
    if m.link == "exp":
        return np.exp(z[:, 0])
    return z[:, 0].copy()
