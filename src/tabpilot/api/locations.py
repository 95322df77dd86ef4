"""Where the SageMaker API's S3Uri values point on this machine, confined to the server's
allowed roots (tabpilot.roots does the resolving and refusing):

    s3://bucket/key   -> S3ROOT/bucket/key with `--s3-root DIR` (offline, no credentials),
                         else S3 itself through s3fs (`pip install 'tabpilot[s3]'`), where
                         `--allow-root s3://bucket/prefix` allows it
    file:///path, /path  -> inside the workspace, the S3 root or an `--allow-root DIR`

Inputs may be a prefix (a folder) of table files, as Autopilot's S3Prefix channels are;
outputs are copied under S3OutputPath the same way. Models (ModelDataUrl) are trusted only
inside the workspace or a `--trust-model-root`, since loading one unpickles its files.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import fsspec
import pandas as pd

from tabpilot.data.read import read_table
from tabpilot.errors import DataError, MissingDependencyError
from tabpilot.roots import AllowedRoots, LocationError

INTERNAL = ("jobs", "models", "logs", "capture", "training-jobs",
            "processing-jobs")  # what the server writes
INTERNAL_PREFIXES = ("tabpilot.db", ".")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".jsonl", ".json", ".gz", ".bz2",
                  ".zst", ".xz")


class Locations:
    """The server's data roots and model roots, and the file operations confined to them."""

    def __init__(self, workspace: str | Path, s3_root: str | Path | None = None,
                 allow: list[str] | None = None, trust_models: list[str] | None = None) -> None:
        self.workspace = Path(workspace).resolve()
        self.allow = list(allow or [])
        self.trust_models = list(trust_models or [])
        local, remote = _split([str(self.workspace), *self.allow])
        self.roots = AllowedRoots(local, remote, s3_root)
        local, remote = _split([str(self.workspace), *self.trust_models])
        self.model_roots = AllowedRoots(local, remote, s3_root, s3_root_allowed=False)

    @property
    def s3_root(self) -> Path | None:
        return self.roots.s3_root

    def worker_args(self) -> list[str]:
        """The command-line options that give a worker process these same roots."""
        args = ["--s3-root", str(self.s3_root)] if self.s3_root is not None else []
        for root in self.allow:
            args += ["--allow-root", root]
        for root in self.trust_models:
            args += ["--trust-model-root", root]
        return args

    def resolve(self, uri: str, field: str = "S3Uri") -> str:
        """A local path, or a remote URI to reach through fsspec, inside the allowed roots."""
        where = self.roots.resolve(uri, field)
        if "://" in where and where.lower().startswith("s3"):
            try:
                import s3fs  # noqa: F401
            except ImportError:
                raise MissingDependencyError("s3fs", "s3") from None
        return where

    def is_remote(self, uri: str, field: str = "S3Uri") -> bool:
        return "://" in self.resolve(uri, field)

    def resolve_output(self, uri: str, field: str) -> str:
        """`resolve` for a place to write: never into the workspace's own state (its
        database, jobs, models and logs), which the server alone writes."""
        where = self.resolve(uri, field)
        if "://" not in where and self._is_internal(Path(where)):
            raise LocationError(f"{field}: {uri} is inside the workspace's own files; write "
                                "outputs under the S3 root or another folder")
        return where

    def is_remote_output(self, uri: str, field: str) -> bool:
        return "://" in self.resolve_output(uri, field)

    def _is_internal(self, path: Path) -> bool:
        if path == self.workspace:
            return True
        if not path.is_relative_to(self.workspace):
            return False
        top = path.relative_to(self.workspace).parts[0]
        return top in INTERNAL or top.startswith(INTERNAL_PREFIXES)

    def table_files(self, uri: str, field: str = "S3Uri") -> list[str]:
        """The table files at `uri`: the file itself, or the files under the prefix."""
        where = self.resolve(uri, field)
        fs, path = fsspec.core.url_to_fs(where)
        if fs.isfile(path):
            return [where]
        if not fs.exists(path):
            raise DataError(f"{field}: {uri} does not exist; check the S3Uri (or --s3-root)")
        found = sorted(p for p in fs.find(path)
                       if Path(p).name[:1] not in "._" and p.lower().endswith(TABLE_SUFFIXES))
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        if protocol == "file":  # a symlink under the prefix may lead out of the roots
            found = [p for p in found if self.roots.contains(p)]
        if not found:
            raise DataError(f"{field}: {uri} holds no CSV or Parquet files")
        return found if protocol == "file" else [f"{protocol}://{p}" for p in found]

    def read(self, uri: str, na_values: list[str] | None = None,
             field: str = "S3Uri") -> str | pd.DataFrame:
        """The training source for the job runner: one path, or the files' rows together."""
        files = self.table_files(uri, field)
        if len(files) == 1:
            return files[0]
        return pd.concat([read_table(f, na_values) for f in files], ignore_index=True)

    def publish(self, local: Path, dest_uri: str, field: str = "S3OutputPath") -> None:
        """Copy a file or folder to `dest_uri` (a folder path or prefix)."""
        where = self.resolve_output(dest_uri, field)
        if "://" not in where:
            target = Path(where)
            if local.is_dir():
                shutil.copytree(local, target, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(local, target)
            return
        fs, path = fsspec.core.url_to_fs(where)
        fs.put(str(local), path, recursive=local.is_dir())

    def fetch_model(self, uri: str, cache: Path, field: str = "ModelDataUrl") -> Path:
        """A local folder holding the model at `uri`, which must lie in a trusted model root
        (the workspace or a --trust-model-root); a remote one is downloaded into `cache`."""
        try:
            where = self.model_roots.resolve(uri, field)
        except LocationError:
            raise LocationError(
                f"{field}: {uri} is not in a trusted model root ({self.model_roots.describe()}); "
                "loading a model runs its code, so start the server with --trust-model-root "
                "covering it") from None
        if "://" not in where:
            return Path(where)
        fs, path = fsspec.core.url_to_fs(where)
        fresh = cache.with_name(f".fetch-{uuid.uuid4().hex}")
        fs.get(path.rstrip("/") + "/", str(fresh), recursive=True)
        if cache.exists():
            shutil.rmtree(cache)
        fresh.rename(cache)
        return cache


def _split(roots: list[str]) -> tuple[list[str], list[str]]:
    """Local folders and remote URI prefixes."""
    remote = [r for r in roots if "://" in r and not r.startswith("file://")]
    local = [r.removeprefix("file://") for r in roots if r not in remote]
    return local, remote


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
