"""The artifact store: where finished directories (model directories, a job's reports and
notebooks) are published so that any machine can read them, verified on every read.

    ArtifactStore.put(local_dir, key)   publish a finished directory under `key`
    ArtifactStore.get(key) -> Path      a local, verified copy (fsspec: a cache folder
                                        named by the directory's digest)
    ArtifactStore.get_into(key, folder) download into a folder of the caller's, every file
                                        checked first, no cache copy (a trial's files
                                        taken by its job: execution/handback.py)
    exists(key), list(prefix), delete(key), delete_tree(key) (everything at and under
    a key, listed or not: a deleted job), check()

Keys are workspace-relative paths (`jobs/<job>/candidates/<c>/model`, `models/<name>`), so
a store row written on one machine (paths relative to its workspace) names the same
published directory on every other one.

A published directory is its files plus a listing beside it, `<key>.published.json`
(sha256 and size of each file; outside the directory, so a model directory holds exactly
what its manifest lists), written last: `put` removes the old listing first, so a reader sees
the old directory, no directory, or the whole new one, never half of one. `get` checks
every file it hands out against the listing, and a model directory is verified against
its own manifest again when it is loaded (`package.load`), so a tampered object in S3
refuses to load with one line.

Two implementations pass one contract suite (tests/artifacts/test_artifact_store_contract.py):
`LocalArtifactStore`, a folder (the workspace itself by default: nothing is copied, exactly
as before there was a choice; or another folder such as a shared mount), and
`FsspecArtifactStore` (s3://bucket/prefix through s3fs, the `s3` extra; credentials and
endpoint from the standard AWS variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_ENDPOINT_URL_S3).
"""

from __future__ import annotations

import abc
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tabpilot.artifacts import manifest
from tabpilot.artifacts.manifest import MANIFEST
from tabpilot.errors import ModelIntegrityError, NotFoundError, TabpilotError
from tabpilot.settings import Backends

log = logging.getLogger("tabpilot.artifacts")

LISTING = ".published.json"  # the suffix of a key's listing, beside its folder
CACHE_ENV = "TABPILOT_ARTIFACTS_CACHE"
CACHE_FOLDER = ".artifacts-cache"  # in a workspace: dot-named, so never an API output place


class ArtifactStoreError(TabpilotError):
    """The artifact store cannot be reached, or is not usable as configured."""


class ArtifactStore(abc.ABC):
    """A place that holds published directories by key.

    Call sequence: `check()` once where a command starts (an unreachable store is one
    line, before any work); `put(local, key)` when a directory is finished (a job's end,
    CreateModel); `get(key)` wherever it is read, then `package.load` on the path it
    returns. Implementations provide the few file primitives below; the publishing
    protocol (listing last, checks on read) lives here, once.
    """

    url: str  # shown in messages and logs

    #: True for the workspace folder itself: nothing is published, paths are used as is
    in_place: bool = False

    # -- the contract -----------------------------------------------------------------
    def put(self, local: str | Path, key: str, files: Iterable[str] | None = None) -> dict:
        """Publish the directory `local` (or only `files`, paths relative to it) under
        `key`, replacing what was there; returns the listing. A model directory must
        verify against its manifest first: a broken model is never published."""
        local = Path(local)
        key = _key(key)
        if not local.is_dir():
            raise NotFoundError(f"{local} is not a directory to publish")
        entries = _entries(local, None if files is None else sorted(set(files)))
        listing = {"format": 1, "files": entries, "published": time.time()}
        old = self._listing(key)
        if old is not None:
            self._remove([key + LISTING])  # from here on, readers see nothing
        self._upload(local, key, sorted(entries))
        stale = sorted(set(old["files"]) - set(entries)) if old else []
        if stale:
            self._remove([_join(key, name) for name in stale])
        self._write_bytes(key + LISTING, _dump(listing))
        log.info("published %s (%d files)", self.where(key), len(entries))
        return listing

    def ensure(self, local: str | Path, key: str) -> None:
        """Publish the model directory `local` under `key` unless the same model (by its
        manifest's sha256) is published there already."""
        local = Path(local)
        listing = self._listing(_key(key))
        theirs = (listing or {}).get("files", {}).get(MANIFEST, {}).get("sha256")
        if theirs is None or theirs != manifest.sha256(local / MANIFEST):
            self.put(local, key)

    def get(self, key: str) -> Path:
        """A local directory holding the files published under `key`, each checked against
        the listing's sha256; NotFoundError when nothing is published there."""
        key = _key(key)
        listing = self._listing(key)
        if listing is None:
            raise NotFoundError(f"nothing is published at {self.where(key)}; publish it "
                                "(a job publishes its models when it ends) or check the key")
        return self._fetch(key, listing)

    def exists(self, key: str) -> bool:
        return self._listing(_key(key)) is not None

    def list(self, prefix: str = "") -> list[str]:
        """The keys published under `prefix` (a folder of keys, or "" for all), sorted."""
        return sorted(self._listed_keys(_key(prefix, empty=True)))

    def delete(self, key: str) -> bool:
        """Remove what is published under `key` (its listing first); False if nothing was."""
        key = _key(key)
        listing = self._listing(key)
        if listing is None:
            return False
        self._remove([key + LISTING])
        self._remove([_join(key, name) for name in listing["files"]])
        return True

    def get_into(self, key: str, folder: str | Path) -> list[str]:
        """Download what is published under `key` into `folder` (made if needed), each
        file checked against the listing before any of them is moved into place; an
        entry of `folder` with the name of a top-level file or folder of the key is
        replaced, others are kept. Returns the top-level names placed. Unlike `get`, no
        cache copy is left behind: the way a job takes its trials' files (`execution/
        handback.py`), which it keeps in its own folder."""
        key = _key(key)
        listing = self._listing(key)
        if listing is None:
            raise NotFoundError(f"nothing is published at {self.where(key)}")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # inside the target folder (one filesystem: the moves are renames) and named
        # `.tmp-*`, which publishing skips (jobs/publishing.py)
        fresh = folder / f".tmp-fetch-{uuid.uuid4().hex}"
        try:
            self._download(key, sorted(listing["files"]), fresh)
            self._checked(fresh, key, listing)
            placed = sorted({name.split("/", 1)[0] for name in listing["files"]})
            for name in placed:
                target = folder / name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                os.replace(fresh / name, target)
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
        return placed

    def delete_tree(self, key: str) -> int:
        """Remove every object at and under `key`, published or not: its listing and the
        listings under it first (readers then see nothing there), then the rest (a put
        cut short leaves files without a listing, which `delete` cannot see). The number
        of objects removed; the way a deleted job leaves the store (`jobs/deleting.py`)."""
        key = _key(key)
        found = sorted(self._objects(key))  # under key/: its own listing is beside it
        listings = [path for path in found if path.endswith(LISTING)]
        if self._read_bytes(key + LISTING) is not None:
            listings.insert(0, key + LISTING)
        self._remove(listings)
        rest = [path for path in found if not path.endswith(LISTING)]
        self._remove(rest)
        return len(listings) + len(rest)

    @abc.abstractmethod
    def check(self) -> None:
        """Raise ArtifactStoreError (one line) unless the store can be reached."""

    def where(self, key: str) -> str:
        """The URL of `key` (or of a file under it), for messages."""
        return f"{self.url.rstrip('/')}/{key}" if key else self.url

    # -- what an implementation provides ----------------------------------------------
    @abc.abstractmethod
    def _read_bytes(self, path: str) -> bytes | None:
        """The object at `path` (relative to the store), or None if there is none."""

    @abc.abstractmethod
    def _write_bytes(self, path: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def _upload(self, local: Path, key: str, names: list[str]) -> None:
        """Copy local/name to key/name for each name."""

    @abc.abstractmethod
    def _remove(self, paths: list[str]) -> None:
        """Remove the objects at `paths`; missing ones are no error."""

    @abc.abstractmethod
    def _listed_keys(self, prefix: str) -> Iterable[str]: ...

    @abc.abstractmethod
    def _fetch(self, key: str, listing: dict) -> Path: ...

    @abc.abstractmethod
    def _download(self, key: str, names: list[str], folder: Path) -> None:
        """Copy key/name to folder/name for each name (folders made as needed)."""

    @abc.abstractmethod
    def _objects(self, key: str) -> Iterable[str]:
        """Every object under the folder `key` (paths relative to the store)."""

    def _listing(self, key: str) -> dict | None:
        data = self._read_bytes(key + LISTING)
        if data is None:
            return None
        try:
            listing = json.loads(data)
            assert all(isinstance(e["sha256"], str) for e in listing["files"].values())
        except Exception:
            raise ModelIntegrityError(f"{self.where(key + LISTING)} is not a listing of "
                                      "published files; publish the directory again") from None
        return listing

    def _checked(self, folder: Path, key: str, listing: dict) -> None:
        """Every listed file of `folder` matches its sha256, else ModelIntegrityError."""
        for name, entry in listing["files"].items():
            path = folder / name
            if path.is_symlink() or not path.is_file():
                raise ModelIntegrityError(f"{self.where(_join(key, name))} is missing; "
                                          "publish the directory again")
            if manifest.sha256(path) != entry["sha256"]:
                raise ModelIntegrityError(
                    f"{self.where(_join(key, name))} does not match its sha256 in "
                    f"{self.where(key + LISTING)}; "
                    "it was modified or corrupted, publish it again")


class LocalArtifactStore(ArtifactStore):
    """A folder. The workspace itself (`in_place`): the default, nothing is copied. Another
    folder (a mount shared between machines): files are copied in, each written beside its
    place and renamed over it, and `get` checks them where they are."""

    def __init__(self, root: str | Path, in_place: bool = False) -> None:
        self.root = Path(root).resolve()
        self.url = str(self.root)
        self.in_place = in_place

    def check(self) -> None:
        if self.in_place:  # the workspace: made when a job needs it, not before
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ArtifactStoreError(f"cannot write to the artifact store {self.url}: "
                                     f"{exc.strerror or exc}; fix --artifacts or "
                                     "$TABPILOT_ARTIFACTS") from None

    def _read_bytes(self, path: str) -> bytes | None:
        try:
            return (self.root / path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _write_bytes(self, path: str, data: bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        manifest.replace(target, lambda tmp: tmp.write_bytes(data))

    def _upload(self, local: Path, key: str, names: list[str]) -> None:
        for name in names:
            source, target = local / name, self.root / key / name
            if source.resolve() == target.resolve():
                continue  # publishing a directory onto itself
            target.parent.mkdir(parents=True, exist_ok=True)
            manifest.replace(target, lambda tmp, src=source: shutil.copyfile(src, tmp))

    def _remove(self, paths: list[str]) -> None:
        for path in paths:
            (self.root / path).unlink(missing_ok=True)

    def _listed_keys(self, prefix: str) -> Iterable[str]:
        base = self.root / prefix
        if base.is_dir():
            for found in base.rglob(f"*{LISTING}"):
                if found.is_file():
                    yield found.relative_to(self.root).as_posix()[: -len(LISTING)]

    def _fetch(self, key: str, listing: dict) -> Path:
        folder = self.root / key
        self._checked(folder, key, listing)
        return folder

    def _download(self, key: str, names: list[str], folder: Path) -> None:
        for name in names:
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(self.root / key / name, target)
            except FileNotFoundError:  # the check that follows names it
                continue

    def _objects(self, key: str) -> Iterable[str]:
        base = self.root / key
        if base.is_dir() and not base.is_symlink():
            for found in base.rglob("*"):
                if found.is_file() or found.is_symlink():
                    yield found.relative_to(self.root).as_posix()

    def delete_tree(self, key: str) -> int:
        removed = super().delete_tree(key)
        base = self.root / _key(key)
        if base.is_dir() and not base.is_symlink():
            shutil.rmtree(base, ignore_errors=True)  # the empty folders left
        return removed


# -- opening ----------------------------------------------------------------------------
def for_workspace(workspace: str | Path, url: str | None = None) -> ArtifactStore:
    """The workspace's artifact store: the one `url` names, else $TABPILOT_ARTIFACTS's,
    else the workspace folder itself (`tabpilot.settings`, the one place this is decided).
    Downloads are cached in the workspace's `.artifacts-cache/` (or $TABPILOT_ARTIFACTS_CACHE)."""
    workspace = Path(workspace).resolve()
    chosen = Backends.resolve(artifacts=url).artifacts
    if chosen is None or ("://" not in chosen and Path(chosen) == workspace):
        return LocalArtifactStore(workspace, in_place=True)
    return open_url(chosen, os.environ.get(CACHE_ENV) or workspace / CACHE_FOLDER)


def open_url(url: str, cache: str | Path | None = None) -> ArtifactStore:
    """The store at a folder or URL (already normalised by `settings`)."""
    if "://" not in url:
        return LocalArtifactStore(url)
    from tabpilot.artifacts.remote import FsspecArtifactStore

    return FsspecArtifactStore(url, cache or default_cache())


def default_cache() -> Path:
    """Where downloads go outside a workspace (`load_model("s3://...")`)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tabpilot" / "artifacts"


def fetch_url(url: str) -> Path:
    """A local, verified copy of the directory published at `url`
    (s3://bucket/prefix/key, or a folder): `load_model`'s way to a model in S3."""
    from tabpilot.settings import normalize_artifacts_url

    where = normalize_artifacts_url(url)
    parent, _, name = where.rpartition("/")
    if "://" in where and "/" not in where.split("://", 1)[1]:
        raise NotFoundError(f"{url} names a bucket, not a published directory in it")
    return open_url(parent).get(name)


def key_of(path: str | Path, workspace: str | Path) -> str | None:
    """The key of a path inside the workspace (its relative path), else None."""
    absolute = Path(os.path.abspath(path))
    root = Path(workspace).resolve()
    for candidate in (absolute, absolute.resolve()):
        if candidate.is_relative_to(root) and candidate != root:
            return candidate.relative_to(root).as_posix()
    return None


def local_copy(path: str | Path, workspace: str | Path, artifacts: ArtifactStore) -> Path:
    """Where to read a directory that the store's rows name by its workspace path: the
    path itself with the default store; else the store's verified copy of its key, or the
    local folder when this workspace has one that was never published (a job made before
    the store was set)."""
    path = Path(path)
    key = key_of(path, workspace)
    if artifacts.in_place or key is None:
        return path
    try:
        return artifacts.get(key)
    except NotFoundError:
        if path.is_dir():
            return path
        raise NotFoundError(f"{key} is neither published in the artifact store "
                            f"{artifacts.url} nor in this workspace ({workspace}); was it "
                            "made with another --artifacts?") from None


# -- helpers ----------------------------------------------------------------------------
def digest(listing: dict) -> str:
    """The content's name in a cache: a model directory's manifest sha256, else the
    listing's (files and hashes only, not when they were published)."""
    files = listing["files"]
    if MANIFEST in files:
        return files[MANIFEST]["sha256"]
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def _entries(local: Path, files: list[str] | None) -> dict[str, dict[str, Any]]:
    """The listing's entries; a model directory's come from its verified manifest."""
    from tabpilot.artifacts.package import is_model_directory, verify

    if files is None:
        if is_model_directory(local):
            entries = dict(verify(local)["files"])
            entries[MANIFEST] = manifest.entry(local / MANIFEST)
            return entries
        files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*")
                       if p.is_file() and not p.is_symlink() and not p.name.endswith(LISTING))
    entries = {}
    for name in files:
        _key(name)  # no `..`, no absolute path
        path = local / name
        if path.is_symlink() or not path.is_file():
            raise NotFoundError(f"{path} is not a file to publish")
        entries[name] = manifest.entry(path)
    return entries


def _key(key: str, empty: bool = False) -> str:
    parts = [p for p in str(key).replace("\\", "/").split("/") if p]
    if any(p in (".", "..") for p in parts) or (not parts and not empty):
        raise ArtifactStoreError(f"artifact key {key!r} is not a relative path such as "
                                 "jobs/JOB/candidates/NAME/model")
    return "/".join(parts)


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def _dump(listing: dict) -> bytes:
    return json.dumps(listing, indent=1, sort_keys=True).encode()
