"""The one resolver of user-given locations: every path or URI that the SageMaker API, the
CLI or the Python API accepts is turned into a place inside the allowed roots here, or
refused with one line naming the field.

    s3://bucket/key   -> S3ROOT/bucket/key with an S3 root (offline S3); else the real
                         s3://bucket/key, if it lies under an allowed remote root
    file:///path      -> /path            } inside an allowed local root, after symlinks
    /path, rel/path   -> /abs/path        } and `..` are resolved
    other://...       -> only under an allowed remote root

A server confines every location to its roots (default: the workspace and the S3 root);
the CLI and the Python API act for the user at their own shell, so by default they allow
any local path (`unconfined`), unless TABPILOT_ALLOWED_ROOTS lists roots.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from tabpilot.errors import TabpilotError

# S3's bucket rule (3-63 of a-z 0-9 . -, starting and ending with a letter or digit)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


class LocationError(TabpilotError):
    """A location outside the allowed roots, or one that cannot be a location at all."""


class AllowedRoots:
    """Where user-given locations may point.

    `local`: folders (symlinks resolved); None allows any local path. `remote`: URI
    prefixes such as "s3://bucket/prefix" reached through fsspec; None allows any URI.
    `s3_root`: a folder that stands in for S3 (s3://bucket/key is s3_root/bucket/key),
    itself an allowed root unless `s3_root_allowed` is False (model roots map s3:// URIs
    but trust only their own folders).
    """

    def __init__(self, local: Iterable[str | Path] | None = (), remote: Iterable[str] | None = (),
                 s3_root: str | Path | None = None, s3_root_allowed: bool = True) -> None:
        self.s3_root = Path(s3_root).resolve() if s3_root else None
        self.local: list[Path] | None = None if local is None else \
            [Path(p).expanduser().resolve() for p in local] + \
            ([self.s3_root] if self.s3_root is not None and s3_root_allowed else [])
        self.remote: list[str] | None = None if remote is None else [_prefix(r) for r in remote]
        if self.s3_root is not None and self.local is not None and self.remote:
            self.local += [self.s3_root / _s3_key(r, "root") for r in self.remote
                           if r.lower().startswith("s3://")]

    @classmethod
    def unconfined(cls, s3_root: str | Path | None = None) -> AllowedRoots:
        """Any local path or URI, or the roots TABPILOT_ALLOWED_ROOTS lists (os.pathsep
        apart: folders and URI prefixes such as s3://bucket/prefix)."""
        value = os.environ.get("TABPILOT_ALLOWED_ROOTS", "")
        # os.pathsep apart, but the colon of a URI's "://" does not separate
        listed = [p for p in re.split(rf"{re.escape(os.pathsep)}(?!//)", value) if p]
        if not listed:
            return cls(None, None, s3_root)
        local = [p for p in listed if not _SCHEME.match(p)]
        return cls(local, [p for p in listed if _SCHEME.match(p)], s3_root)

    def describe(self) -> str:
        if self.local is None:
            return "any local path"
        places = [str(p) for p in self.local] + (self.remote or [])
        return ", ".join(places) if places else "none"

    def resolve(self, uri: str, field: str = "location") -> str:
        """An absolute local path inside a local root, or a URI under a remote root."""
        if not isinstance(uri, str) or not uri.strip() or "\x00" in uri:
            raise LocationError(f"{field}: {uri!r} is not a location; give a path or an s3:// URI")
        scheme = _SCHEME.match(uri)
        if scheme is None:
            return self._local(Path(uri).expanduser(), uri, field)
        kind = scheme.group(1).lower()
        if kind == "file":
            rest = uri[len("file://"):]
            if not rest.startswith("/"):  # file://host/path names another machine
                raise LocationError(f"{field}: {uri} names a host; use file:///absolute/path")
            return self._local(Path(rest), uri, field)
        if kind in ("s3", "s3a", "s3n") and self.s3_root is not None:
            return self._local(self.s3_root / _s3_key(uri, field), uri, field)
        if kind in ("s3", "s3a", "s3n"):
            _s3_key(uri, field)
        return self._remote(uri, field)

    def contains(self, path: str | Path) -> bool:
        """Whether a local path (symlinks resolved) lies inside a local root."""
        if self.local is None:
            return True
        real = Path(path).resolve()
        return any(real == root or real.is_relative_to(root) for root in self.local)

    def _local(self, path: Path, uri: str, field: str) -> str:
        real = path.resolve()  # follows symlinks as far as the path exists
        if not self.contains(real):
            raise LocationError(
                f"{field}: {uri} is outside the allowed roots ({self.describe()}); use a "
                "location under one of them, or start the server with --allow-root DIR")
        return str(real)

    def _remote(self, uri: str, field: str) -> str:
        parts = uri.split("://", 1)[1].split("/")
        if any(p in (".", "..") for p in parts):
            raise LocationError(f"{field}: {uri} has '.' or '..' parts; give the key itself")
        if self.remote is None:
            return uri
        if not any(uri == r.rstrip("/") or uri.startswith(r) for r in self.remote):
            hint = ("an S3 root (--s3-root DIR) or --allow-root s3://bucket/prefix"
                    if uri.lower().startswith("s3") else f"--allow-root {uri.split('://')[0]}://...")
            raise LocationError(f"{field}: {uri} is outside the allowed roots "
                                f"({self.describe()}); allow it with {hint}")
        return uri


def _s3_key(uri: str, field: str) -> str:
    """bucket/key of an s3:// URI, refused unless it is a plain bucket and a relative key."""
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise LocationError(f"{field}: {uri} does not start with a bucket name; "
                            "use s3://bucket/key")
    parts = [p for p in key.split("/") if p]
    if any(p in (".", "..") for p in parts) or "\\" in key:
        raise LocationError(f"{field}: {uri} has '.' or '..' parts; give the key itself")
    return "/".join([bucket, *parts])


def _prefix(root: str) -> str:
    if not _SCHEME.match(root):
        raise LocationError(f"remote root {root!r} is not a URI; give e.g. s3://bucket/prefix")
    return root if root.endswith("/") else root + "/"


def within(roots: Sequence[Path], path: Path) -> bool:
    """Whether `path` (symlinks resolved) lies inside one of `roots` (resolved)."""
    real = path.resolve()
    return any(real == r.resolve() or real.is_relative_to(r.resolve()) for r in roots)
