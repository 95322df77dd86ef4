"""Where the SageMaker API's S3Uri values point on this machine.

    s3://bucket/key   -> S3ROOT/bucket/key with `--s3-root DIR` (offline, no credentials),
                         else S3 itself through s3fs (`pip install 'tabpilot[s3]'`)
    file:///path      -> /path
    /path, rel/path   -> as given

Inputs may be a prefix (a folder) of table files, as Autopilot's S3Prefix channels are;
outputs are copied under S3OutputPath the same way.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import fsspec
import pandas as pd

from tabpilot.data.read import read_table
from tabpilot.errors import DataError, MissingDependencyError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".jsonl", ".json", ".gz", ".bz2",
                  ".zst", ".xz")


class Locations:
    def __init__(self, s3_root: str | Path | None = None) -> None:
        self.s3_root = Path(s3_root).resolve() if s3_root else None

    def resolve(self, uri: str) -> str:
        """A local path, or an s3:// URI to reach through s3fs."""
        if uri.startswith("file://"):
            return uri.removeprefix("file://")
        if uri.startswith("s3://"):
            if self.s3_root is not None:
                return str(self.s3_root / uri.removeprefix("s3://"))
            try:
                import s3fs  # noqa: F401
            except ImportError:
                raise MissingDependencyError("s3fs", "s3") from None
        return uri

    def is_remote(self, uri: str) -> bool:
        return "://" in self.resolve(uri)

    def table_files(self, uri: str) -> list[str]:
        """The table files at `uri`: the file itself, or the files under the prefix."""
        where = self.resolve(uri)
        fs, path = fsspec.core.url_to_fs(where)
        if fs.isfile(path):
            return [where]
        if not fs.exists(path):
            raise DataError(f"{uri} does not exist; check the S3Uri (or --s3-root)")
        found = sorted(p for p in fs.find(path)
                       if Path(p).name[:1] not in "._" and p.lower().endswith(TABLE_SUFFIXES))
        if not found:
            raise DataError(f"{uri} holds no CSV or Parquet files")
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        return found if protocol == "file" else [f"{protocol}://{p}" for p in found]

    def read(self, uri: str, na_values: list[str] | None = None) -> str | pd.DataFrame:
        """The training source for the job runner: one path, or the files' rows together."""
        files = self.table_files(uri)
        if len(files) == 1:
            return files[0]
        return pd.concat([read_table(f, na_values) for f in files], ignore_index=True)

    def publish(self, local: Path, dest_uri: str) -> None:
        """Copy a file or folder to `dest_uri` (a folder path or prefix)."""
        where = self.resolve(dest_uri)
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

    def fetch(self, uri: str, cache: Path) -> Path:
        """A local folder holding what `uri` points at (downloaded into `cache` if remote)."""
        where = self.resolve(uri)
        if "://" not in where:
            return Path(where)
        fs, path = fsspec.core.url_to_fs(where)
        if not cache.exists():
            fs.get(path.rstrip("/") + "/", str(cache), recursive=True)
        return cache


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
