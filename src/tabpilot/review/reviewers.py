"""Reviewers and their tokens. A token is shown once, when the reviewer is added; the store
keeps only its SHA-256, so a copy of the workspace gives nobody a way in. A reviewer's
token opens the review page only (the server's guard never compares it with anything)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from tabpilot.errors import NotFoundError, ResourceExistsError, TabpilotError
from tabpilot.review.flows import REVIEWER
from tabpilot.store import Store

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
PREFIX = "tpr_"  # says what a token is when one turns up in a log or a paste


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_reviewer(store: Store, name: str) -> str:
    """Create a reviewer; returns their token (the only time it exists in clear)."""
    if not _NAME.fullmatch(name):
        raise TabpilotError(f"reviewer name {name[:80]!r} is not valid: use 1-64 letters, "
                            "digits, '.', '_', '@' or '-', starting with a letter or digit")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        store.add_resource(REVIEWER, name, {"token_sha256": _digest(token)}, "Active")
    except ResourceExistsError:
        raise ResourceExistsError(f"reviewer {name!r} exists already; remove it first "
                                  f"(`tabpilot review reviewer remove {name}`) to issue a "
                                  "new token") from None
    return token


def remove_reviewer(store: Store, name: str) -> None:
    if store.find_resource(REVIEWER, name) is None:
        raise NotFoundError(f"no reviewer named {name!r}; `tabpilot review reviewer list` "
                            "lists them")
    store.delete_resource(REVIEWER, name)


def reviewers(store: Store) -> list[str]:
    return [r.name for r in store.list_resources(REVIEWER)]


def authenticate(store: Store, name: str, token: str) -> bool:
    """Whether `token` is `name`'s (constant-time; an unknown name costs the same)."""
    row = store.find_resource(REVIEWER, name) if _NAME.fullmatch(name or "") else None
    expected = row.spec["token_sha256"] if row is not None else _digest(secrets.token_hex(8))
    return hmac.compare_digest(_digest(token or ""), expected) and row is not None


def exists(store: Store, name: str) -> bool:
    return store.find_resource(REVIEWER, name) is not None
