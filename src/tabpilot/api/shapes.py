"""botocore's SageMaker service model drives request validation and response shaping.

`validate(operation, params)` checks a request against the operation's input shape as the
service does (required members, types, enums, lengths, ranges, patterns) and converts
timestamps to epoch seconds; the first violations become one ValidationException message
in AWS's wording. `shape(operation, value)` keeps only the members the output shape knows,
in its types (timestamps as epoch seconds), so responses parse in boto3 exactly as AWS's do.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import logging
import math
import os
import re
from typing import Any

log = logging.getLogger("tabpilot.api")
# Data locations: besides s3:// and https://, tabpilot takes file:// URIs and plain paths.
LOCATION_SHAPES = {"S3Uri", "DestinationS3Uri", "Url", "S3ModelUri", "MonitoringS3Uri"}
# Autopilot reports LogLoss as a candidate metric, yet this enum of the model lacks it.
ENUM_OPEN = {"AutoMLMetricEnum"}


class ApiError(Exception):
    """An error answered in AWS's shape: HTTP status, `__type` and message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def validation_error(message: str) -> ApiError:
    return ApiError("ValidationException", message)


@functools.cache
def service(name: str = "sagemaker"):
    try:
        import botocore.session
    except ImportError as exc:  # pragma: no cover - botocore is a dependency
        raise RuntimeError("the SageMaker API needs botocore: pip install botocore") from exc
    return botocore.session.get_session().get_service_model(name)


def operation(name: str, service_name: str = "sagemaker"):
    try:
        return service(service_name).operation_model(name)
    except Exception:
        raise ApiError("UnknownOperationException", f"unknown operation {name!r}") from None


@functools.cache
def _pattern(text: str) -> re.Pattern | None:
    try:
        return re.compile(text)
    except re.error:  # a Java-only construct: the other constraints still apply
        return None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    raise TypeError(f"not a timestamp: {value!r}")


# -- requests ---------------------------------------------------------------------------
def validate(op_name: str, params: Any, service_name: str = "sagemaker") -> dict[str, Any]:
    """The request, checked and with timestamps as epoch seconds; ValidationException if bad."""
    shape = operation(op_name, service_name).input_shape
    if shape is None:
        return {}
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "the request body must be a JSON object")
    errors: list[str] = []
    value = _check(shape, params, "", errors)
    if errors:
        head = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: "
        raise validation_error(head + "; ".join(errors[:5]))
    return value


def _fail(errors: list[str], path: str, value: Any, constraint: str) -> None:
    shown = "null" if value is None else repr(value) if not isinstance(value, (dict, list)) \
        else type(value).__name__
    errors.append(f"Value {shown} at '{path or 'request'}' failed to satisfy constraint: "
                  f"{constraint}")


def _check(shape, value: Any, path: str, errors: list[str]) -> Any:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            _fail(errors, path, value, "Member must be a structure")
            return value
        out = {}
        for member in shape.required_members:
            if value.get(member) is None:
                _fail(errors, _join(path, member), None, "Member must not be null")
        for key, item in value.items():
            if key in shape.members and item is not None:
                out[key] = _check(shape.members[key], item, _join(path, key), errors)
        return out
    if kind == "list":
        if not isinstance(value, list):
            _fail(errors, path, value, "Member must be a list")
            return value
        _length(meta, len(value), value, path, errors)
        return [_check(shape.member, v, f"{path}.{i + 1}.member", errors)
                for i, v in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            _fail(errors, path, value, "Member must be a map")
            return value
        _length(meta, len(value), value, path, errors)
        return {_check(shape.key, k, path, errors): _check(shape.value, v, f"{path}.{k}", errors)
                for k, v in value.items()}
    if kind == "string":
        if not isinstance(value, str):
            _fail(errors, path, value, "Member must be a string")
            return value
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            _fail(errors, path, value, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        _length(meta, len(value), value, path, errors)
        pattern = _pattern(meta["pattern"]) if "pattern" in meta \
            and shape.name not in LOCATION_SHAPES else None
        if pattern is not None and not pattern.fullmatch(value):
            _fail(errors, path, value, f"Member must satisfy regular expression pattern: "
                                       f"{meta['pattern']}")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(errors, path, value, "Member must be an integer")
            return value
        _range(meta, value, path, errors)
        return value
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            _fail(errors, path, value, "Member must be a number")
            return value
        _range(meta, value, path, errors)
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            _fail(errors, path, value, "Member must be a boolean")
        return value
    if kind == "timestamp":
        try:
            return epoch(value)
        except (TypeError, ValueError):
            _fail(errors, path, value, "Member must be a timestamp in epoch seconds")
            return value
    if kind == "blob":
        try:
            return base64.b64decode(value, validate=True)
        except (TypeError, ValueError):
            _fail(errors, path, value, "Member must be base64")
            return value
    return value


def _join(path: str, member: str) -> str:
    return f"{path}.{_camel(member)}" if path else _camel(member)


def _length(meta: dict, n: int, value: Any, path: str, errors: list[str]) -> None:
    if "min" in meta and n < meta["min"]:
        _fail(errors, path, value, f"Member must have length greater than or equal to {meta['min']}")
    if "max" in meta and n > meta["max"]:
        _fail(errors, path, value, f"Member must have length less than or equal to {meta['max']}")


def _range(meta: dict, value: float, path: str, errors: list[str]) -> None:
    if "min" in meta and value < meta["min"]:
        _fail(errors, path, value, f"Member must have value greater than or equal to {meta['min']}")
    if "max" in meta and value > meta["max"]:
        _fail(errors, path, value, f"Member must have value less than or equal to {meta['max']}")


# -- responses --------------------------------------------------------------------------
class _Incomplete(Exception):
    pass


def shape(op_name: str, value: dict[str, Any] | None, service_name: str = "sagemaker"
          ) -> dict[str, Any]:
    """The response as the output shape has it: unknown members dropped, types converted."""
    out_shape = operation(op_name, service_name).output_shape
    if out_shape is None:
        return {}
    try:
        return _shape(out_shape, value or {}, op_name)
    except _Incomplete as exc:
        raise ApiError("InternalFailure", f"{op_name} response incomplete: {exc}", 500) from None


def _shape(shape, value: Any, path: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for key, member in shape.members.items():
            item = value.get(key) if isinstance(value, dict) else None
            if item is None:
                continue
            try:
                out[key] = _shape(member, item, f"{path}.{key}")
            except _Incomplete:
                if key in shape.required_members:
                    raise
                _complain(f"{path}.{key} dropped: incomplete")
        missing = [m for m in shape.required_members if m not in out]
        if missing:
            raise _Incomplete(f"{path} lacks {', '.join(missing)}")
        return out
    if kind == "list":
        items = []
        for i, v in enumerate(value):
            try:
                items.append(_shape(shape.member, v, f"{path}[{i}]"))
            except _Incomplete:
                _complain(f"{path}[{i}] dropped: incomplete")
        return items
    if kind == "map":
        return {str(k): _shape(shape.value, v, f"{path}.{k}") for k, v in value.items()
                if v is not None}
    if kind == "timestamp":
        return epoch(value)
    if kind == "string":
        text = value if isinstance(value, str) else str(value)
        enum = getattr(shape, "enum", None)
        if enum and text not in enum and shape.name not in ENUM_OPEN:
            _complain(f"{path}: {text!r} is not one of {shape.name}")
        return text
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("float", "double"):
        return float(value)
    if kind == "boolean":
        return bool(value)
    if kind == "blob":
        return base64.b64encode(value).decode() if isinstance(value, bytes) else value
    return value


def _complain(message: str) -> None:
    if os.environ.get("TABPILOT_API_STRICT"):  # tests: a malformed response is a bug
        raise AssertionError(message)
    log.warning("response shaping: %s", message)
