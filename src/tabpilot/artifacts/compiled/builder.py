"""ForestBuilder: the converters add trees; `build` lays them out as the kernel reads them.

Binary trees become bit tests (kernel.c, part 2): each numeric column's thresholds are
sorted and a node keeps its threshold's rank k, to test bit k of the row's words for
that column ("x <= threshold k"); a categorical node tests its category set against the
row's one-hot words, as a chain of nodes when the set spans several 32-bit words. Leaves
become nodes that lead to themselves, after all the others. A leaf holds `leaf_dim`
values (a forest classifier's class fractions), added to the tree's slot and the next.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from tabpilot.artifacts.compiled.forest import (
    CTR_ELEM,
    NODE,
    SPLIT,
    Forest,
    Member,
    Unsupported,
)
from tabpilot.tasks import ProblemType

DEFAULT_LEFT, CATEGORICAL, STRICT = 1, 2, 4  # node flags of add_tree
NUMERIC_COLUMN, CATEGORICAL_COLUMN = 1, 2  # column kinds of the kernel
WORD = 32  # bits per row word


@dataclass
class _Tree:
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray  # global: >= 0 a node, < 0 ~leaf
    right: np.ndarray
    flags: np.ndarray
    cat_sets: dict[int, np.ndarray]  # node (local) -> uint32 bitset words
    first_node: int


@dataclass
class _Oblivious:
    depth: list[int] = field(default_factory=list)
    split_begin: list[int] = field(default_factory=list)
    leaf_begin: list[int] = field(default_factory=list)
    slot: list[int] = field(default_factory=list)
    dim: list[int] = field(default_factory=list)
    splits: list[np.ndarray] = field(default_factory=list)
    leaves: list[np.ndarray] = field(default_factory=list)
    n_splits: int = 0
    n_leaves: int = 0


@dataclass
class _Ctrs:
    elems: list[np.ndarray] = field(default_factory=list)
    elem_begin: list[int] = field(default_factory=lambda: [0])
    keys: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    key_begin: list[int] = field(default_factory=lambda: [0])
    default: list[float] = field(default_factory=list)


class ForestBuilder:
    """Collects the trees, oblivious trees and CTR columns of one or more models."""

    def __init__(self, n_cols: int, problem_type: ProblemType, n_codes: int = 0,
                 deadline: float | None = None) -> None:
        self.n_cols = n_cols
        self.problem_type = problem_type
        self.n_codes = n_codes  # categorical codes run 0 .. n_codes - 1 (and -1, missing)
        self.deadline = deadline  # time.time() by which building must be done
        self.members: list[Member] = []
        self.init: list[float] = []
        self.float32_inputs = False
        self.float32_sums = False
        self.leaf_dim = 1  # values per binary-tree leaf (set before adding trees)
        self.zeros_missing = False
        self.hash_values = np.zeros(0, dtype=np.int64)  # CatBoost's hash of code c at c + 1
        self._trees: list[_Tree] = []
        self._roots: list[int] = []
        self._slots: list[int] = []
        self._leaves: list[np.ndarray] = []
        self._n_nodes = self._n_leaves = self._n_leaf_values = 0
        self._oblivious = _Oblivious()
        self._ctrs = _Ctrs()

    @property
    def n_slots(self) -> int:
        return len(self.init)

    @property
    def size(self) -> int:
        """Nodes, oblivious splits and leaf values so far: what memory and time grow with."""
        o = self._oblivious
        return self._n_nodes + self._n_leaf_values + o.n_splits + o.n_leaves

    def in_time(self) -> None:
        """Raise TimeoutError once the deadline has passed (checked every 64 trees)."""
        if self.deadline is not None and time.time() > self.deadline:
            raise TimeoutError("compiling ran past the time allowed for packaging")

    def add_member(self, dim: int, link: str, scale: float = 1.0,
                   bias: list[float] | None = None, init: list[float] | None = None) -> int:
        """Reserve `dim` output slots for one model; returns the first."""
        slot = self.n_slots
        self.members.append(Member(slot, dim, link, scale, list(bias or [0.0] * dim)))
        self.init += list(init or [0.0] * dim)
        return slot

    def add_tree(self, feature: np.ndarray, threshold: np.ndarray, left: np.ndarray,
                 right: np.ndarray, flags: np.ndarray, leaves: np.ndarray, slot: int,
                 cat_sets: dict[int, np.ndarray] | None = None) -> None:
        """One binary tree: node arrays with children >= 0 for nodes, ~leaf for leaves.

        A numeric node goes left when x <= threshold (x < threshold with STRICT); a
        categorical node (CATEGORICAL, with its uint32 bitset words in cat_sets) when the
        code's bit is set; a missing value goes left with DEFAULT_LEFT. A tree that is one
        leaf has no nodes. `leaves` is (leaves,) or (leaves, leaf_dim).
        """
        if len(self._roots) % 64 == 0:
            self.in_time()

        def shift(child: np.ndarray) -> np.ndarray:
            child = np.asarray(child, dtype=np.int64)
            return np.where(child >= 0, child + self._n_nodes, ~(~child + self._n_leaves))

        n = len(feature)
        self._trees.append(_Tree(np.asarray(feature, dtype=np.int64),
                                 np.asarray(threshold, dtype=np.float64), shift(left),
                                 shift(right), np.asarray(flags, dtype=np.int64),
                                 dict(cat_sets or {}), self._n_nodes))
        self._roots.append(self._n_nodes if n else ~self._n_leaves)
        self._slots.append(slot)
        leaves = np.asarray(leaves, dtype=np.float64).reshape(-1, self.leaf_dim)
        self._leaves.append(leaves.ravel())
        self._n_nodes += n
        self._n_leaves += len(leaves)
        self._n_leaf_values += leaves.size

    def add_oblivious(self, splits: np.ndarray, leaves: np.ndarray, slot: int, dim: int
                      ) -> None:
        """One oblivious tree: split d gives bit d of the leaf index; dim values per leaf."""
        o = self._oblivious
        if len(o.depth) % 64 == 0:
            self.in_time()
        o.depth.append(len(splits))
        o.split_begin.append(o.n_splits)
        o.leaf_begin.append(o.n_leaves)
        o.slot.append(slot)
        o.dim.append(dim)
        o.splits.append(splits)
        o.leaves.append(np.asarray(leaves, dtype=np.float64))
        o.n_splits += len(splits)
        o.n_leaves += len(leaves)

    def add_ctr(self, elems: np.ndarray, keys: np.ndarray, values: np.ndarray,
                default: float) -> int:
        """A derived column: a hash of the row's projection looked up in (keys, values);
        returns the column's index in the row the kernel extends."""
        c = self._ctrs
        order = np.argsort(keys, kind="stable")
        c.elems.append(elems)
        c.elem_begin.append(c.elem_begin[-1] + len(elems))
        c.keys.append(np.asarray(keys, dtype=np.uint64)[order])
        c.values.append(np.asarray(values, dtype=np.float64)[order])
        c.key_begin.append(c.key_begin[-1] + len(keys))
        c.default.append(default)
        return self.n_cols + len(c.default) - 1

    def build(self) -> Forest:
        o, c = self._oblivious, self._ctrs
        if self.leaf_dim > 1 and self.float32_sums:
            raise Unsupported("float32 sums of vector leaves")
        arrays = {
            "init": np.asarray(self.init, dtype=np.float64),
            **self._binary(),
            "slots": np.asarray(self._slots, dtype=np.int32),
            "leaves": _cat(self._leaves, np.float64),
            "odepth": np.asarray(o.depth, dtype=np.int32),
            "osplit_begin": np.asarray(o.split_begin, dtype=np.int32),
            "oleaf_begin": np.asarray(o.leaf_begin, dtype=np.int64),
            "oslot": np.asarray(o.slot, dtype=np.int32), "odim": np.asarray(o.dim, dtype=np.int32),
            "osplits": _cat(o.splits, SPLIT), "oleaves": _cat(o.leaves, np.float64),
            "ctr_elem_begin": np.asarray(c.elem_begin, dtype=np.int32),
            "ctr_elems": _cat(c.elems, CTR_ELEM),
            "ctr_key_begin": np.asarray(c.key_begin, dtype=np.int64),
            "ctr_keys": _cat(c.keys, np.uint64), "ctr_values": _cat(c.values, np.float64),
            "ctr_default": np.asarray(c.default, dtype=np.float64),
            "hash_values": np.ascontiguousarray(self.hash_values, dtype=np.int64),
        }
        return Forest(self.n_cols, self.problem_type, self.members, arrays,
                      self.float32_inputs, self.float32_sums, self.leaf_dim, self.zeros_missing)

    # -- binary trees as bit tests ---------------------------------------------------------
    def _binary(self) -> dict[str, np.ndarray]:
        trees = self._trees
        empty = np.zeros(0, dtype=np.int64)
        feature = np.concatenate([t.feature for t in trees]) if trees else empty
        threshold = np.concatenate([t.threshold for t in trees]) if trees else empty * 1.0
        flags = np.concatenate([t.flags for t in trees]) if trees else empty
        sets = {t.first_node + i: np.asarray(bits, dtype=np.uint32)
                for t in trees for i, bits in t.cat_sets.items()}
        if feature.size and (feature.min() < 0 or feature.max() >= self.n_cols):
            raise Unsupported("a tree reads a column the encoder does not produce")
        categorical = (flags & CATEGORICAL) != 0
        strict = (flags & STRICT) != 0
        if strict.any():  # x < t is x <= the float32 below t, x being a float32 too
            if not self.float32_inputs:
                raise Unsupported("strict thresholds on float64 inputs")
            below = np.nextafter(threshold[strict].astype(np.float32), np.float32(-np.inf))
            threshold[strict] = below.astype(np.float64)
        layout = _Columns(self.n_cols, feature, threshold, categorical, sets)
        # a missing value sets every bit of a column's first copy of words, clears the second
        base = layout.first_word[feature] + np.where(flags & DEFAULT_LEFT, 0,
                                                     layout.n_words[feature])
        nodes = np.zeros(len(feature), dtype=NODE)
        nodes["child"][:, 0] = np.concatenate([t.left for t in trees]) if trees else empty
        nodes["child"][:, 1] = np.concatenate([t.right for t in trees]) if trees else empty
        numeric = np.flatnonzero(~categorical)
        nodes["word"][numeric] = base[numeric] + layout.rank[numeric] // WORD
        nodes["mask"][numeric] = np.left_shift(np.uint32(1),
                                               (layout.rank[numeric] % WORD).astype(np.uint32))
        nodes = _with_chains(nodes, np.flatnonzero(categorical), sets, base)
        # leaves: nodes after all the others, each leading to itself
        first_leaf = len(nodes)
        nodes["child"] = np.where(nodes["child"] < 0, first_leaf + ~nodes["child"],
                                  nodes["child"])
        leaves = np.zeros(self._n_leaves, dtype=NODE)
        leaves["child"] = (first_leaf + np.arange(self._n_leaves))[:, None]
        roots = np.asarray(self._roots, dtype=np.int64)
        return {
            "n_words": np.array([2 * int(layout.n_words.sum())], dtype=np.int32),
            "col_kind": layout.kind, "col_word": layout.first_word,
            "col_words": layout.n_words, "edge_begin": layout.edge_begin,
            "edges": layout.edges, "first_leaf": np.array([first_leaf], dtype=np.int32),
            "roots": np.where(roots < 0, first_leaf + ~roots, roots).astype(np.int32),
            "nodes": np.concatenate([nodes, leaves]),
        }


class _Columns:
    """Per column: kind, sorted thresholds, words in one copy, first word; per node: rank."""

    def __init__(self, n_cols: int, feature: np.ndarray, threshold: np.ndarray,
                 categorical: np.ndarray, sets: dict[int, np.ndarray]) -> None:
        self.kind = np.zeros(n_cols, dtype=np.uint8)
        self.kind[feature[~categorical]] = NUMERIC_COLUMN
        if self.kind[feature[categorical]].any():
            raise Unsupported("a column split both as a number and as a category")
        self.kind[feature[categorical]] = CATEGORICAL_COLUMN
        self.rank = np.zeros(len(feature), dtype=np.int64)
        self.n_words = np.zeros(n_cols, dtype=np.int32)
        cuts_of = [np.zeros(0)] * n_cols
        numeric = np.flatnonzero(~categorical)
        for f, at in _groups(feature[numeric], numeric):
            cuts_of[f] = np.unique(threshold[at])
            self.rank[at] = np.searchsorted(cuts_of[f], threshold[at])
            self.n_words[f] = (len(cuts_of[f]) + WORD - 1) // WORD
        for f, at in _groups(feature[categorical], np.flatnonzero(categorical)):
            self.n_words[f] = max(1, max(len(sets[int(i)]) for i in at))
        self.edges = np.concatenate(cuts_of).astype(np.float64) if n_cols else np.zeros(0)
        self.edge_begin = np.concatenate([[0], np.cumsum([len(c) for c in cuts_of])]
                                         ).astype(np.int32)
        self.first_word = np.concatenate([[0], np.cumsum(2 * self.n_words)[:-1]]
                                         ).astype(np.int32)


def _groups(keys: np.ndarray, items: np.ndarray):
    """(key, items with that key) for each distinct key."""
    if not keys.size:
        return
    order = np.argsort(keys, kind="stable")
    distinct, starts = np.unique(keys[order], return_index=True)
    for key, part in zip(distinct, np.split(items[order], starts[1:]), strict=True):
        yield int(key), part


def _with_chains(nodes: np.ndarray, categorical: np.ndarray, sets: dict[int, np.ndarray],
                 base: np.ndarray) -> np.ndarray:
    """Categorical nodes as bit tests: one per non-empty word of the set, chained on a miss."""
    extra: list[tuple[int, int, tuple[int, int]]] = []  # mask, word, (hit, miss)
    for i in categorical:
        words = sets[int(i)]
        hits = [j for j, w in enumerate(words) if w]
        if not hits:
            raise Unsupported("an empty category set")
        hit, miss = (int(c) for c in nodes["child"][i])
        links = [int(i)] + [len(nodes) + len(extra) + k for k in range(len(hits) - 1)]
        for k, (node, j) in enumerate(zip(links, hits, strict=True)):
            test = (int(words[j]), int(base[i]) + j,
                    (hit, links[k + 1] if k + 1 < len(links) else miss))
            if node == i:
                nodes[i] = test
            else:
                extra.append(test)
    if not extra:
        return nodes
    return np.concatenate([nodes, np.array(extra, dtype=NODE)])


def _cat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0, dtype),
                                dtype=dtype)
