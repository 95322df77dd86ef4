"""The built-ins' hyperparameters: SageMaker sends every value as a string; each algorithm
declares its names, types, ranges and defaults once, and a bad value gets one line in
scikit-learn's wording ("The 'eta' hyperparameter of xgboost must be a float in the range
[0, 1]. Got '2' instead.").
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from tabpilot.errors import ConfigError

# the SageMaker SDK and tools add these to any estimator's hyperparameters
IGNORED_PREFIXES = ("sagemaker_", "_")


@dataclass(frozen=True)
class Param:
    kind: str  # "int", "float", "bool", "choice", "str", "auto-int"
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # (low, ...] instead of [low, ...]
    choices: tuple[str, ...] = ()
    required: bool = False

    def describe(self) -> str:
        if self.kind == "choice":
            return f"one of {', '.join(self.choices)}"
        if self.kind == "bool":
            return "true or false"
        if self.kind == "str":
            return "a string"
        kind = "an int" if self.kind in ("int", "auto-int") else "a float"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        auto = " or 'auto'" if self.kind == "auto-int" else ""
        return f"{kind} in the range {'(' if self.low_open else '['}{low}, {high}]{auto}"


def parse(algorithm: str, spec: dict[str, Param], given: dict[str, str]) -> dict[str, Any]:
    """The typed hyperparameters: defaults filled in, every given one checked."""
    out = {name: p.default for name, p in spec.items()}
    for name, raw in given.items():
        if name.startswith(IGNORED_PREFIXES):
            continue
        p = spec.get(name)
        if p is None:
            near = difflib.get_close_matches(name, spec, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else \
                f"; it takes: {', '.join(sorted(spec))}"
            raise ConfigError(f"{algorithm} has no hyperparameter {name!r}{hint}")
        out[name] = _value(algorithm, name, p, str(raw))
    missing = [n for n, p in spec.items() if p.required and n not in given]
    if missing:
        raise ConfigError(f"{algorithm} needs the hyperparameter {missing[0]!r} "
                          f"({spec[missing[0]].describe()})")
    return out


def _value(algorithm: str, name: str, p: Param, raw: str) -> Any:
    text = raw.strip().strip('"')

    def bad() -> ConfigError:
        return ConfigError(f"The {name!r} hyperparameter of {algorithm} must be "
                           f"{p.describe()}. Got {raw!r} instead.")

    if p.kind == "str":
        return text
    if p.kind == "choice":
        if text not in p.choices:
            raise bad()
        return text
    if p.kind == "bool":
        if text.lower() not in ("true", "false", "1", "0"):
            raise bad()
        return text.lower() in ("true", "1")
    if p.kind == "auto-int" and text.lower() == "auto":
        return "auto"
    try:
        number = float(text)
    except ValueError:
        raise bad() from None
    if not math.isfinite(number) or (p.kind in ("int", "auto-int") and number != int(number)):
        raise bad()
    if p.low is not None and (number < p.low or (p.low_open and number == p.low)):
        raise bad()
    if p.high is not None and number > p.high:
        raise bad()
    return int(number) if p.kind in ("int", "auto-int") else number
