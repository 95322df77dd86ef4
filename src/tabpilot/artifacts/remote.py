"""The artifact store on any fsspec filesystem (s3://bucket/prefix, through s3fs): the
`ArtifactStore` contract of `artifacts/store.py` over a remote prefix, a verified local
cache of what it downloads, and s3fs's settings from the standard AWS variables."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tabpilot.artifacts.store import LISTING, ArtifactStore, ArtifactStoreError, _join, digest
from tabpilot.errors import MissingDependencyError, ModelIntegrityError

# an unreachable S3 endpoint fails within seconds (two tries of 5 s at most to connect)
# instead of botocore's default of a minute per try
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60
ATTEMPTS = 2


class FsspecArtifactStore(ArtifactStore):
    """A prefix of any fsspec filesystem (s3://bucket/prefix). `get` downloads into
    `cache/<digest>` (the sha256 of a model's manifest, else of the listing), checks every
    file there, and renames the folder into place: the cache holds only verified, complete
    copies, shared by every key with the same content."""

    def __init__(self, url: str, cache: str | Path) -> None:
        import fsspec

        self.url = url.rstrip("/")
        protocol, _, self._root = self.url.partition("://")
        try:
            self.fs = fsspec.filesystem(protocol, skip_instance_cache=True,
                                        **_options(protocol))
        except ImportError:
            package = "s3fs" if protocol in ("s3", "s3a") else f"the fsspec driver of {protocol}"
            raise MissingDependencyError(package, "s3") from None
        self.cache = Path(cache)

    def check(self) -> None:
        try:
            self.fs.ls(self._root.split("/", 1)[0], refresh=True)
        except FileNotFoundError:
            raise ArtifactStoreError(
                f"the artifact store {self.url} is not there: no bucket "
                f"{self._root.split('/', 1)[0]!r}; create it (aws s3 mb) or fix "
                "--artifacts / $TABPILOT_ARTIFACTS") from None
        except Exception as exc:  # connection refused, DNS, credentials: the line says which
            raise ArtifactStoreError(
                f"cannot reach the artifact store {self.url}: {_first_line(exc)}; check "
                "AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or fix "
                "--artifacts / $TABPILOT_ARTIFACTS") from None

    def _path(self, path: str) -> str:
        return _join(self._root, path)

    def _read_bytes(self, path: str) -> bytes | None:
        try:
            return self.fs.cat_file(self._path(path))
        except FileNotFoundError:
            return None

    def _write_bytes(self, path: str, data: bytes) -> None:
        self.fs.pipe_file(self._path(path), data)

    def _upload(self, local: Path, key: str, names: list[str]) -> None:
        if names:  # one batch: s3fs sends them concurrently
            self.fs.put([str(local / n) for n in names],
                        [self._path(_join(key, n)) for n in names])

    def _remove(self, paths: list[str]) -> None:
        if paths:
            self.fs.rm([self._path(p) for p in paths])
            self.fs.invalidate_cache()

    def _listed_keys(self, prefix: str) -> Iterable[str]:
        try:
            found = self.fs.find(self._path(prefix))
        except FileNotFoundError:
            return []
        cut = len(self._root.strip("/")) + 1 if self._root.strip("/") else 0
        return [p[cut: -len(LISTING)] for p in found if p.endswith(LISTING)]

    def _fetch(self, key: str, listing: dict) -> Path:
        folder = self.cache / digest(listing)
        if folder.is_dir():
            try:
                self._checked(folder, key, listing)
                return folder
            except ModelIntegrityError:  # a cached copy changed on disk: fetch it again
                shutil.rmtree(folder, ignore_errors=True)
        self.cache.mkdir(parents=True, exist_ok=True)
        fresh = self.cache / f".fetch-{uuid.uuid4().hex}"
        try:
            self._download(key, sorted(listing["files"]), fresh)
            self._checked(fresh, key, listing)
            try:
                os.replace(fresh, folder)
            except OSError:  # another process put the same content there first
                if not folder.is_dir():
                    raise
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
        return folder


    def _download(self, key: str, names: list[str], folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
        if names:  # one batch: s3fs fetches them concurrently
            self.fs.get([self._path(_join(key, n)) for n in names],
                        [str(folder / n) for n in names])

    def _objects(self, key: str) -> Iterable[str]:
        try:
            found = self.fs.find(self._path(key))
        except FileNotFoundError:
            return []
        cut = len(self._root.strip("/")) + 1 if self._root.strip("/") else 0
        return [p[cut:] for p in found]


def _options(protocol: str) -> dict[str, Any]:
    """s3fs's options from the standard AWS variables (credentials are read by botocore
    itself), with timeouts that make an unreachable endpoint an error within seconds."""
    if protocol not in ("s3", "s3a"):
        return {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    options: dict[str, Any] = {
        "config_kwargs": {"connect_timeout": CONNECT_TIMEOUT_S,
                          "read_timeout": READ_TIMEOUT_S,
                          "retries": {"max_attempts": ATTEMPTS, "mode": "standard"}}}
    if endpoint:
        options["client_kwargs"] = {"endpoint_url": endpoint}
    return options


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
