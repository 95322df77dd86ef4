"""Filtering, sorting and NextToken pagination shared by the List* operations."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tabpilot.api.shapes import validation_error

T = TypeVar("T")


def in_time_window(params: dict[str, Any], prefix: str, value: float | None) -> bool:
    """`<prefix>After` / `<prefix>Before` filters (epoch seconds) on one timestamp."""
    after, before = params.get(f"{prefix}After"), params.get(f"{prefix}Before")
    if value is None:
        return after is None and before is None
    return (after is None or value > after) and (before is None or value < before)


def named_page(rows: Sequence[Any], params: dict[str, Any],
               status: Callable[[Any], str | None] = lambda r: r.status
               ) -> tuple[list[Any], str | None]:
    """The List* operations' common form, for rows with `name`, `created`, `modified`:
    `NameContains`, `StatusEquals`, the CreationTime / LastModifiedTime windows, then
    `page` sorted by Name, CreationTime or Status (CreationTime by default)."""
    kept = [r for r in rows
            if params.get("NameContains", "").lower() in r.name.lower()
            and params.get("StatusEquals") in (None, status(r))
            and in_time_window(params, "CreationTime", r.created)
            and in_time_window(params, "LastModifiedTime", r.modified)]
    return page(kept, params, {"Name": lambda r: r.name, "CreationTime": lambda r: r.created,
                               "Status": status}, "CreationTime")


def page(items: Sequence[T], params: dict[str, Any], sort_keys: dict[str, Callable[[T], Any]],
         default_sort: str | None, default_order: str = "Descending", default_size: int = 10
         ) -> tuple[list[T], str | None]:
    """Sort by `SortBy`/`SortOrder`, then the page that `NextToken` and `MaxResults` pick."""
    ordered = list(items)
    sort_by = params.get("SortBy", default_sort)
    if sort_by is not None:
        key = sort_keys[sort_by]
        present = [i for i in ordered if key(i) is not None]
        absent = [i for i in ordered if key(i) is None]
        present.sort(key=key, reverse=params.get("SortOrder", default_order) == "Descending")
        ordered = present + absent
    start = _offset(params.get("NextToken"), params)
    size = params.get("MaxResults", default_size)
    chunk = ordered[start:start + size]
    more = start + size < len(ordered)
    return chunk, _token(start + size, params) if more else None


def _query(params: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in params.items() if k not in ("NextToken", "MaxResults")},
                      sort_keys=True, default=str)


def _token(offset: int, params: dict[str, Any]) -> str:
    raw = json.dumps({"o": offset, "q": _query(params)})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _offset(token: str | None, params: dict[str, Any]) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["o"])
    except (ValueError, KeyError, TypeError):
        raise validation_error("Invalid pagination token: pass the NextToken of the previous "
                               "response unchanged") from None
    if data.get("q") != _query(params):
        raise validation_error("The NextToken was issued for other request parameters; "
                               "repeat the first request's filters and sorting")
    return offset
