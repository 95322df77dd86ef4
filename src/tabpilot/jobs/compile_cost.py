"""What compiling an ensemble's or a stack's members costs, before it is done.

A trial that used all its time may leave its tree model without a compiled path; an
ensemble or a stack holding it compiles it at its own packaging (artifacts/composite.py),
and without that the member answers on the Python path: a 228 MB member made an ensemble
answer one row in 126 ms instead of a few. So the time kept for those steps, and their
check before packaging, count the compiles still to do.

Compiling a member builds its forest from the model's trees, checks it against the Python
path on 500 rows and writes it; the kernel library is built once per machine and C source
(artifacts/compiled/native.py, a cache by source digest: 0.3-0.4 s, done by the first
trial), so no member pays for it. The cost grows with the model's bytes at a rate of its
family: the boosting converters walk each tree in Python, the scikit-learn one takes whole
node arrays. Measured with bench/compile_cost.py on 2 cores (seconds, MB on disk):

    LightGBM 300 trees   wine_quality 6.4 MB 0.37 s, x5 bag 31 MB 1.85 s;
                         adult 1.0 MB 0.07 s; california_housing 1.4 MB 0.10 s
    XGBoost 300          wine_quality 5.5 MB 0.40 s; adult x5 bag 6.2 MB 0.66 s
    CatBoost 300         wine_quality 1.3 MB 0.13 s; adult 0.7 MB 0.10 s
    RandomForest         wine_quality 49.7 MB 0.19 s; california 80 MB 0.28 s;
                         adult 65 MB 0.29 s
    ExtraTrees bags      wine_quality x5 413 MB 2.56 s; california x3 248 MB 1.12 s

Per MB that is 0.06-0.07 s (LightGBM), 0.07-0.11 (XGBoost), 0.10-0.14 (CatBoost) and
0.003-0.006 (forests); the rates below are the highest measured, rounded up. Nodes do not
serve better: 0.1-0.2 us per node for forests, 1-5 us for boosting.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabpilot.artifacts import compiled, composite
from tabpilot.artifacts.manifest import MEMBERS, METADATA, PREDICTOR

SECONDS_PER_MB = {"lightgbm": 0.08, "xgboost": 0.12, "catboost": 0.15,
                  "random_forest": 0.007, "extra_trees": 0.007}
OTHER_SECONDS_PER_MB = max(SECONDS_PER_MB.values())  # a converter added later
MEMBER_SECONDS = 0.05  # the check's frames, writing the forest, rewriting the manifests


@dataclass(frozen=True)
class Pending:
    """A single candidate inside member `member` that has no compiled path yet."""

    member: int  # its index among the member directories given
    directory: Path  # its model directory (inside a composite: its copy there)
    family: str
    bytes: int
    seconds: float


def estimate(family: str | None, model_bytes: float) -> float:
    """Seconds to compile a single candidate of `family` whose model has `model_bytes`."""
    rate = SECONDS_PER_MB.get(family or "", OTHER_SECONDS_PER_MB)
    return MEMBER_SECONDS + rate * model_bytes / 1e6


def pending(member_dirs: Sequence[Path]) -> list[Pending]:
    """The single candidates inside `member_dirs` (model directories; a composite's
    members in turn) that packaging them together would compile: tree models without a
    compiled path whose compile may succeed now (their trial ran out of time), each
    once, and none that has a compiled copy elsewhere among them (as composite.py
    skips and shares them)."""
    singles = [(m, d, _metadata(d)) for m, top in enumerate(member_dirs)
               for d in _singles(Path(top))]
    done = {_inode(d) for _, d, _ in singles if (d / compiled.FOREST_FILE).is_file()}
    found: list[Pending] = []
    for m, d, meta in singles:
        family = meta.get("family")
        key = _inode(d)
        if key in done or family not in compiled.CONVERTERS \
                or not composite.retryable(meta.get("compiled")):
            continue
        done.add(key)
        size = sum(p.stat().st_size for p in d.iterdir() if p.is_file())
        found.append(Pending(m, d, family, size, estimate(family, size)))
    return found


def member_source(candidate_dir: Path) -> Path:
    """The model directory a composite links candidate `candidate_dir`'s model from: its
    own, or, when its trial left it without a compiled path that a compile may still give
    it, a copy inside another candidate of the job (`candidate_dir`'s siblings) that a
    composite's packaging compiled. The copy is the candidate's own files, hard-linked,
    with the forest and its kernel beside them, so nothing is compiled twice: diamonds at
    60 s, a stack's twin over the same forest ran out of time compiling it again and held
    it on the Python path (8.2 ms a row against its stack's 0.66 ms)."""
    own = candidate_dir / "model"
    if (own / compiled.FOREST_FILE).is_file() or \
            not composite.retryable(_metadata(own).get("compiled")):
        return own
    key = _inode(own)
    for found in sorted(candidate_dir.parent.glob(f"*/model/{MEMBERS}/**/{PREDICTOR}")):
        copy = found.parent
        if (copy / compiled.FOREST_FILE).is_file() and _inode(copy) == key:
            return copy
    return own


def seconds(member_dirs: Sequence[Path]) -> float:
    """Seconds to compile what packaging `member_dirs` together would compile."""
    return sum(p.seconds for p in pending(member_dirs))


def _singles(directory: Path) -> list[Path]:
    """The model directories of the single candidates in `directory`, depth first; a
    composite of format 1 (members inside its pickle) gives itself, of no tree family."""
    count = _metadata(directory).get("member_dirs")
    if count is None:
        return [directory] if (directory / PREDICTOR).is_file() else []
    return [s for i in range(int(count)) for s in _singles(directory / MEMBERS / str(i))]


def _metadata(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / METADATA).read_text())
    except (OSError, ValueError):
        return {}


def _inode(directory: Path) -> tuple[int, int]:
    """A candidate's identity across hard-linked copies: its pickle's inode."""
    stat = (directory / PREDICTOR).stat()
    return stat.st_dev, stat.st_ino
