"""A candidate's curves.json and rules.json: where they are, read and written whole.

Both lie in the candidate's folder beside `model/`, not inside it: the model directory
is checksummed by its manifest (artifacts/manifest.py), and these files are written
after it (rules.json again when the reports compute the importance).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CURVES = "curves.json"
RULES = "rules.json"


def _write(path: Path, document: Any) -> None:
    """Replace the file whole: a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(document, allow_nan=False))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def write_curves(folder: Path, curves: dict[str, Any]) -> Path:
    """curves.json: {"metric", "higher_is_better", "best_iteration", "train", "validation"}."""
    path = Path(folder) / CURVES
    _write(path, curves)
    return path


def read_curves(folder: Path) -> dict[str, Any] | None:
    """The candidate's curves; None for a family that records none (forests, linear)."""
    return _read(Path(folder) / CURVES)


def read_rules(folder: Path) -> list[dict[str, str]]:
    return _read(Path(folder) / RULES) or []


def write_rules(folder: Path, results: list[dict[str, str]], merge: bool = True) -> Path:
    """rules.json, in rule order: `results` merged by rule name with those already there,
    or (merge=False) in their place."""
    from tabpilot.diagnostics.rules import RULE_NAMES

    merged = {r["RuleConfigurationName"]: r for r in (read_rules(folder) if merge else [])}
    merged.update({r["RuleConfigurationName"]: r for r in results})
    order = {name: i for i, name in enumerate(RULE_NAMES)}
    path = Path(folder) / RULES
    _write(path, sorted(merged.values(),
                        key=lambda r: order.get(r["RuleConfigurationName"], len(order))))
    return path
