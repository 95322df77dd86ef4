"""The artifact stores the contract and hand-back tests run on: a folder, and (marked
`cluster`) a prefix of a throwaway SeaweedFS server, each with a way to change one of its
objects behind its back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tabpilot.artifacts.store import ArtifactStore, LocalArtifactStore


class Backend:
    """A store under test and a way to change one of its objects behind its back."""

    def __init__(self, store: ArtifactStore, overwrite: Callable[[str, bytes], None]) -> None:
        self.store = store
        self.overwrite = overwrite  # (path relative to the store, bytes)


@pytest.fixture(params=["folder", pytest.param("s3", marks=pytest.mark.cluster)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "folder":  # what `--artifacts file:///mnt/shared` opens
        root = tmp_path / "shared"

        def overwrite(path: str, data: bytes) -> None:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)

        return Backend(LocalArtifactStore(root), overwrite)
    from tabpilot.artifacts.remote import FsspecArtifactStore

    prefix = request.getfixturevalue("s3_prefix")
    fs = request.getfixturevalue("seaweed").filesystem()
    bucket_path = prefix.split("://", 1)[1]
    return Backend(FsspecArtifactStore(prefix, tmp_path / "cache"),
                   lambda path, data: fs.pipe_file(f"{bucket_path}/{path}", data))
