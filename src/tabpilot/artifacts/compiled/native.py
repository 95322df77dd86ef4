"""The native kernel: kernel.c built with the system C compiler, called through ctypes.

The library depends only on the C source, so it is built once per machine and source
version into a cache folder (`TABPILOT_CACHE`, else ~/.cache/tabpilot) and reused by
every model. A model directory also carries a copy, so a machine without a compiler
(a slim serving image) still gets the fast path when its platform matches.

ctypes releases the GIL during the call: large batches are split over threads.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from tabpilot.artifacts.compiled.forest import ARRAYS, Forest

log = logging.getLogger("tabpilot.artifacts.compiled")

SOURCE = Path(__file__).with_name("kernel.c")
ABI_VERSION = 8
PARALLEL_FROM = 5000  # rows; below, one thread answers fastest
BLOCK_BYTES = 1 << 19  # a block's row words stay in a core's L2 cache beside the trees
MAX_BLOCK = 256  # rows; more gains nothing
BUILD_SECONDS = 60


class KernelUnavailable(Exception):
    """No usable native kernel on this machine (no compiler, foreign platform, ...)."""


def source_digest() -> str:
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]


def platform_tag() -> str:
    return f"{sys.platform}-{platform.machine()}"


def library_name() -> str:
    return f"tabpilot-trees-{source_digest()}-{platform_tag()}.so"


def cache_dir() -> Path:
    if os.environ.get("TABPILOT_CACHE"):
        return Path(os.environ["TABPILOT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tabpilot"


def compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def build(target: Path) -> Path:
    """Compile kernel.c into `target` (atomically: concurrent builders do not collide)."""
    cc = compiler()
    if cc is None:
        raise KernelUnavailable("no C compiler found (looked for $CC, cc, gcc, clang); "
                                "install one, e.g. apt-get install gcc")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=target.parent)
    except OSError as exc:
        raise KernelUnavailable(f"cannot write the kernel into {target.parent} ({exc}); "
                                "set TABPILOT_CACHE to a writable folder") from None
    os.close(fd)
    try:
        done = subprocess.run([cc, "-O3", "-std=c99", "-shared", "-fPIC", "-o", tmp,
                               str(SOURCE), "-lm"], capture_output=True, text=True,
                              timeout=BUILD_SECONDS)
        if done.returncode:
            raise KernelUnavailable(f"{cc} could not build the kernel: "
                                    f"{done.stderr.strip()[:300]}")
        os.replace(tmp, target)
    except subprocess.TimeoutExpired:
        raise KernelUnavailable(f"{cc} took over {BUILD_SECONDS} s to build the kernel") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


@lru_cache(maxsize=8)
def _open(path: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(path)
    if lib.tp_abi_version() != ABI_VERSION:
        raise KernelUnavailable(f"{path} is a kernel of another version")
    fn = lib.tp_predict
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p,
                   ctypes.c_void_p, ctypes.c_void_p]
    return lib


def library(allow_build: bool = True) -> Path:
    """The kernel to compile new models with: this machine's cached build, else a fresh one.

    The cache is used only when this user alone can write it (owner and mode of the file
    and its folder), so another account cannot plant code in every model built here; a
    model's own copy is what loads when it is served (`verified`)."""
    cached = cache_dir() / library_name()
    if cached.is_file() and _private(cached):
        try:
            _open(str(cached))
            return cached
        except (OSError, KernelUnavailable) as exc:
            log.debug("kernel %s unusable: %s", cached, exc)
    if not allow_build:
        raise KernelUnavailable("no prebuilt kernel for this machine")
    built = build(cached)
    try:
        _open(str(built))
    except OSError as exc:
        raise KernelUnavailable(f"the kernel built at {built} does not load: {exc}") from None
    return built


def _private(path: Path) -> bool:
    """Whether `path` and its folder belong to this user and no one else can write them."""
    for p in (path, path.parent):
        info = p.stat()
        if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            log.warning("not using the kernel cache %s: %s is writable by other users",
                        path, p)
            return False
    return True


_VERIFIED: dict[str, tuple[int, Path]] = {}  # sha256 -> (pid, path of the checked bytes)
_VERIFIED_LOCK = threading.Lock()


def verified(path: Path, sha256: str) -> Path:
    """A path to load the kernel whose bytes hash to `sha256` from: `path`'s bytes, read once
    and checked, then loaded from memory (a memfd), so a file swapped after the check is
    never what loads. ModelIntegrityError when they do not match."""
    from tabpilot.errors import ModelIntegrityError

    with _VERIFIED_LOCK:
        known = _VERIFIED.get(sha256)
        if known is not None and known[0] == os.getpid():
            return known[1]
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ModelIntegrityError(f"compiled kernel {path} does not match its sha256 in the "
                                      "model's manifest; it was modified, re-export the model")
        target = _in_memory(data)
        try:
            _open(str(target))
        except OSError as exc:
            raise KernelUnavailable(f"the model's compiled kernel does not load on this machine "
                                    f"({exc}); package the model here for its compiled path"
                                    ) from None
        _VERIFIED[sha256] = (os.getpid(), target)
        return target


def _in_memory(data: bytes) -> Path:
    """A path holding `data` that no other process can replace: a memfd on Linux, else a
    file in a folder only this process's user can enter."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("tabpilot-kernel", os.MFD_CLOEXEC)
        with os.fdopen(os.dup(fd), "wb") as f:
            f.write(data)
        return Path(f"/proc/{os.getpid()}/fd/{fd}")  # pid: a forked child makes its own
    folder = Path(tempfile.mkdtemp(prefix="tabpilot-kernel-"))
    target = folder / "kernel.so"
    target.write_bytes(data)
    return target


class _Model(ctypes.Structure):
    _fields_ = [
        ("block_shift", ctypes.c_int32), ("node_shift", ctypes.c_int32),
        ("n_cols", ctypes.c_int32), ("n_ext", ctypes.c_int32),
        ("n_slots", ctypes.c_int32),
        ("float32_inputs", ctypes.c_int32), ("float32_sums", ctypes.c_int32),
        ("init", ctypes.c_void_p),
        ("n_words", ctypes.c_int32), ("col_kind", ctypes.c_void_p),
        ("col_word", ctypes.c_void_p), ("col_words", ctypes.c_void_p),
        ("edge_begin", ctypes.c_void_p), ("edges", ctypes.c_void_p),
        ("n_trees", ctypes.c_int32), ("first_leaf", ctypes.c_int32),
        ("roots", ctypes.c_void_p), ("slots", ctypes.c_void_p),
        ("nodes", ctypes.c_void_p), ("leaves", ctypes.c_void_p), ("leaf_dim", ctypes.c_int32),
        ("n_otrees", ctypes.c_int32), ("odepth", ctypes.c_void_p),
        ("osplit_begin", ctypes.c_void_p), ("oleaf_begin", ctypes.c_void_p),
        ("oslot", ctypes.c_void_p), ("odim", ctypes.c_void_p), ("osplits", ctypes.c_void_p),
        ("oleaves", ctypes.c_void_p),
        ("n_ctrs", ctypes.c_int32), ("ctr_elem_begin", ctypes.c_void_p),
        ("ctr_elems", ctypes.c_void_p), ("ctr_key_begin", ctypes.c_void_p),
        ("ctr_keys", ctypes.c_void_p), ("ctr_values", ctypes.c_void_p),
        ("ctr_default", ctypes.c_void_p), ("hash_values", ctypes.c_void_p),
    ]


_POOL: tuple[int, ThreadPoolExecutor] | None = None


def _pool() -> ThreadPoolExecutor:
    """The threads for large batches: one pool per process (a forked child makes its own)."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
                                                 thread_name_prefix="tabpilot-trees"))
    return _POOL[1]


class Kernel:
    """A forest bound to the native library: `raw(X)` -> (rows, slots) raw sums."""

    def __init__(self, forest: Forest, path: Path) -> None:
        self.forest = forest
        self.path = path
        lib = _open(str(path))
        self._fn = lib.tp_predict
        # rows per block: a power of two (the kernel shifts), at least the lanes
        n_words = int(forest.arrays["n_words"][0])
        shift = max(int(lib.tp_lanes()).bit_length() - 1,
                    min(MAX_BLOCK.bit_length() - 1,
                        (BLOCK_BYTES // (4 * max(n_words, 1))).bit_length() - 1))
        block = 1 << shift
        a = {k: np.ascontiguousarray(forest.arrays[k]) for k in ARRAYS}
        # the nodes' word indexes pre-shifted to the block layout: a step of a walk then
        # adds its lane (about 6 % faster on a 600-tree LightGBM model)
        a["nodes"] = a["nodes"].copy()
        a["nodes"]["word"] <<= np.uint32(shift)
        self._arrays = a  # the struct points into these; keep them alive
        self.n_ext = forest.n_cols + forest.n_ctrs
        self.n_slots = forest.n_slots
        self._struct = _Model(
            shift, shift, forest.n_cols, self.n_ext, self.n_slots, int(forest.float32_inputs),
            int(forest.float32_sums), _ptr(a["init"]),
            int(a["n_words"][0]), _ptr(a["col_kind"]), _ptr(a["col_word"]),
            _ptr(a["col_words"]), _ptr(a["edge_begin"]), _ptr(a["edges"]),
            len(a["roots"]), int(a["first_leaf"][0]), _ptr(a["roots"]), _ptr(a["slots"]),
            _ptr(a["nodes"]),
            _ptr(a["leaves"]), forest.leaf_dim,
            len(a["odepth"]), _ptr(a["odepth"]), _ptr(a["osplit_begin"]),
            _ptr(a["oleaf_begin"]), _ptr(a["oslot"]), _ptr(a["odim"]), _ptr(a["osplits"]),
            _ptr(a["oleaves"]),
            len(a["ctr_default"]), _ptr(a["ctr_elem_begin"]), _ptr(a["ctr_elems"]),
            _ptr(a["ctr_key_begin"]), _ptr(a["ctr_keys"]), _ptr(a["ctr_values"]),
            _ptr(a["ctr_default"]), _ptr(a["hash_values"]))
        self._ref = ctypes.addressof(self._struct)
        self._work_size = block * self.n_ext if forest.n_ctrs else 1
        self._words_size = max(1, block * int(a["n_words"][0]))
        # a few rows: blocks of one row, so a row's words lie together (a forest with
        # thousands of thresholds per column has 100 kB of them), in scratch kept per thread
        self._lanes = int(lib.tp_lanes())
        self._single = _Model.from_buffer_copy(self._struct)
        self._single.block_shift = 0
        self._single_ref = ctypes.addressof(self._single)
        self._scratch = threading.local()

    def raw(self, X: np.ndarray) -> np.ndarray:
        """X: (rows, n_cols) float64, C order."""
        n = X.shape[0]
        out = np.empty((n, self.n_slots))
        if 0 < n < self._lanes:
            self._call_few(X, out)
            return out
        if n < PARALLEL_FROM:
            self._call(X, out, 0, n)
            return out
        workers = os.cpu_count() or 1
        bounds = [int(b) for b in np.linspace(0, n, workers * 4 + 1)]
        list(_pool().map(lambda i: self._call(X, out, bounds[i], bounds[i + 1]),
                         range(len(bounds) - 1)))
        return out

    def _call(self, X: np.ndarray, out: np.ndarray, start: int, stop: int) -> None:
        if stop <= start:
            return
        work = np.empty(self._work_size)
        words = np.empty(self._words_size, dtype=np.uint32)
        self._fn(self._ref, X.ctypes.data + start * X.strides[0], stop - start,
                 out.ctypes.data + start * out.strides[0], work.ctypes.data, words.ctypes.data)


    def _call_few(self, X: np.ndarray, out: np.ndarray) -> None:
        scratch = self._scratch.__dict__.get("buffers")
        if scratch is None:
            scratch = (np.empty(self.n_ext if self.forest.n_ctrs else 1),
                       np.empty(max(1, int(self._arrays["n_words"][0])), dtype=np.uint32))
            self._scratch.buffers = scratch
        self._fn(self._single_ref, X.ctypes.data, X.shape[0], out.ctypes.data,
                 scratch[0].ctypes.data, scratch[1].ctypes.data)


def _ptr(array: np.ndarray) -> int:
    return array.ctypes.data if array.size else 0
