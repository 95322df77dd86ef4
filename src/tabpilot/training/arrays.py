"""Model files of the built-ins other than XGBoost: one `.npz` of plain arrays, read back
with `allow_pickle=False`, so a model.tar.gz from anywhere cannot run code when loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tabpilot.errors import ModelIntegrityError


def save(path: Path, **arrays: object) -> None:
    with open(path, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


def load(model_dir: Path, name: str, needed: tuple[str, ...]) -> dict[str, np.ndarray]:
    path = model_dir / name
    if not path.is_file():
        raise ModelIntegrityError(f"the model.tar.gz holds no {name}; was it made by a "
                                  "tabpilot training job of the same algorithm?")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(f"cannot read {name}: {exc}") from None
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise ModelIntegrityError(f"{name} lacks {', '.join(missing)}")
    return arrays
