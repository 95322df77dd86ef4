"""SageMaker Search's `SearchExpression` evaluated over plain records (dicts shaped like
the service's SearchRecord members), with one error line for a malformed expression.

A filter's `Name` is a dotted property path: `TrialComponentName`, `Parents.ExperimentName`,
`Parameters.max_depth`, `Metrics.validation:auc` (the metric's Last value; for a training
job its final value), `Metrics.loss.Max`, `Tags.team`. Lists fan out (a filter on
`Parents.TrialName` matches when any parent does); map keys may themselves hold dots (the
longest key that matches wins). A parameter's `{StringValue|NumberValue}`, an artifact's
`Value` and a metric summary's `Last` stand for themselves.

Operators: `Equals`, `NotEquals` (true when no value equals, a missing property
included), `GreaterThan(OrEqualTo)`, `LessThan(OrEqualTo)` (numbers compare as numbers,
the value must then be a number; properties ending in `Time` compare as timestamps, given
as epoch seconds or ISO 8601; text compares as text), `Contains` (text, ignoring case),
`In` (a comma-separated list), `Exists`, `NotExists`. A `SearchExpression` joins its
`Filters`, `NestedFilters` (every filter true of one element of the nested list) and
`SubExpressions` with its `Operator`, `And` by default.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from tabpilot.errors import ConfigError

OPERATORS = ("Equals", "NotEquals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan",
             "LessThanOrEqualTo", "Contains", "Exists", "NotExists", "In")
MAX_DEPTH = 5
_ORDER = {"GreaterThan": lambda a, b: a > b, "GreaterThanOrEqualTo": lambda a, b: a >= b,
          "LessThan": lambda a, b: a < b, "LessThanOrEqualTo": lambda a, b: a <= b}


def check(expression: dict[str, Any], properties: Iterable[str], resource: str,
          depth: int = 1) -> None:
    """Refuse, in one line, an expression that names a property `resource` records lack
    or a filter without the Value its operator needs."""
    if depth > MAX_DEPTH:
        raise ConfigError(f"SearchExpression nests SubExpressions deeper than {MAX_DEPTH}")
    known = set(properties)
    for f in expression.get("Filters", []):
        _check_filter(f, known, resource)
    for nested in expression.get("NestedFilters", []):
        prefix = nested["NestedPropertyName"]
        _check_root(prefix, known, resource)
        for f in nested["Filters"]:
            if not f["Name"].startswith(prefix + "."):
                raise ConfigError(f"NestedFilters on {prefix}: filter {f['Name']!r} must name a "
                                  f"property of {prefix}, e.g. {prefix}.<property>")
            _check_filter(f, known, resource)
    for sub in expression.get("SubExpressions", []):
        check(sub, known, resource, depth + 1)


def _check_root(name: str, known: set[str], resource: str) -> None:
    root = name.split(".", 1)[0]
    if root not in known:
        raise ConfigError(f"{name!r} is not a property of {resource}; search on one of "
                          f"{', '.join(sorted(known))}")


def _check_filter(f: dict[str, Any], known: set[str], resource: str) -> None:
    _check_root(f["Name"], known, resource)
    operator = f.get("Operator", "Equals")
    if operator not in ("Exists", "NotExists") and f.get("Value") is None:
        raise ConfigError(f"filter on {f['Name']!r}: Operator {operator} needs a Value")


def matches(record: dict[str, Any], expression: dict[str, Any]) -> bool:
    results = [_filter(record, f) for f in expression.get("Filters", [])]
    results += [_nested(record, n) for n in expression.get("NestedFilters", [])]
    results += [matches(record, s) for s in expression.get("SubExpressions", [])]
    if not results:
        return True
    return any(results) if expression.get("Operator") == "Or" else all(results)


def _nested(record: dict[str, Any], nested: dict[str, Any]) -> bool:
    prefix = nested["NestedPropertyName"]
    for element in resolve(record, prefix):
        if not isinstance(element, dict):
            continue
        if all(_filter(element, {**f, "Name": f["Name"][len(prefix) + 1:]})
               for f in nested["Filters"]):
            return True
    return False


def resolve(record: Any, path: str) -> list[Any]:
    """Every value at `path` (lists fan out; map keys may hold dots)."""
    return _walk(record, path.split("."))


def _walk(node: Any, parts: list[str]) -> list[Any]:
    if node is None:
        return []
    if isinstance(node, list):
        return [v for item in node for v in _walk(item, parts)]
    if not parts:
        return [node]
    if isinstance(node, dict):
        for n in range(len(parts), 0, -1):
            key = ".".join(parts[:n])
            if key in node:
                return _walk(node[key], parts[n:])
    return []


def plain(value: Any) -> Any:
    """A parameter, artifact or metric summary as the one value a filter compares."""
    if isinstance(value, dict):
        for key in ("NumberValue", "StringValue", "Value", "Last"):
            if key in value:
                return value[key]
        return None
    return value


def _filter(record: dict[str, Any], f: dict[str, Any]) -> bool:
    name, operator = f["Name"], f.get("Operator", "Equals")
    found = resolve(record, name)
    if operator == "Exists":
        return bool(found)
    if operator == "NotExists":
        return not found
    values = [v for v in (plain(x) for x in found) if v is not None]
    text = str(f["Value"])
    if operator == "NotEquals":
        return not any(_equal(v, text, name) for v in values)
    if operator == "Equals":
        return any(_equal(v, text, name) for v in values)
    if operator == "In":
        options = [o.strip() for o in text.split(",")]
        return any(_equal(v, o, name) for v in values for o in options)
    if operator == "Contains":
        return any(text.lower() in str(v).lower() for v in values)
    compare = _ORDER[operator]
    return any(compare(*_pair(v, text, name)) for v in values)


def _equal(value: Any, text: str, name: str) -> bool:
    if isinstance(value, bool):
        return str(value).lower() == text.lower()
    if isinstance(value, (int, float)):
        try:
            left, right = _pair(value, text, name)
        except ConfigError:
            return False
        return left == right
    return str(value) == text


def _pair(value: Any, text: str, name: str) -> tuple[Any, Any]:
    """(value, the filter's Value) in comparable types."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value), text
    if name.rsplit(".", 1)[-1].endswith(("Time", "TimeStamp", "Timestamp")):
        try:
            return float(value), _epoch(text)
        except (TypeError, ValueError):
            raise ConfigError(f"filter on {name!r}: {text!r} is not a time; give epoch "
                              "seconds or ISO 8601 (2024-05-01T12:00:00Z)") from None
    try:
        return float(value), float(text)
    except ValueError:
        raise ConfigError(f"filter on {name!r}: {name} is a number, so the Value must be "
                          f"one; got {text!r}") from None


def _epoch(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.timestamp()


def sort_key(record: dict[str, Any], path: str) -> tuple[int, Any] | None:
    """The first value at `path`, orderable across records (numbers before text);
    None when the record has none (those records go last)."""
    values = [v for v in (plain(x) for x in resolve(record, path)) if v is not None]
    if not values:
        return None
    value = values[0]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value))
    return (1, str(value))
