"""Composite models (an ensemble, a stack) whose members keep their own model directories.

A composite of format 2 holds each member as a copy of the member candidate's model
directory made of hard links, so packaging it neither re-pickles nor re-hashes its
members (a 1.27 GB ensemble of forest bags was 15 s to package when it did):

    model/
      predictor.pkl           the composite with its `members` left out
      metadata.json           "format": 2, "member_dirs": the number of members
      manifest.json           every file below, paths relative to model/
      members/<i>/            member i's model directory (hard links; a copy across
                              filesystems); itself a composite with members/ in turn

The manifest takes the sha256 of linked files from the members' own manifests, so
`verify` of the composite checks every file once. A linked file is never written into
(that would change the member candidate's model too): a member copy's file that must
change (a compiled path added at packaging) is written new and renamed over the link.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot.artifacts import compiled, manifest
from tabpilot.artifacts.manifest import MANIFEST, MEMBERS, METADATA, PREDICTOR

log = logging.getLogger("tabpilot.artifacts.composite")

FORMAT = 2


def is_composite(predictor: Any) -> bool:
    return getattr(predictor, "members", None) is not None


def write(predictor: Any, member_dirs: Sequence[str | Path], directory: Path,
          sample: pd.DataFrame | None, deadline: float | None
          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the composite's predictor and members into the new model directory
    `directory`; returns its metadata entries and its compiled path's record.

    With `sample`, single candidates without a compiled path are compiled now, into
    their member copies, and attached in memory; members sharing an encoder then share
    it in memory too, so that the composite answers as it will once loaded.
    """
    if len(member_dirs) != len(predictor.members):
        raise ValueError(f"{len(member_dirs)} member directories for "
                         f"{len(predictor.members)} members")
    for i, source in enumerate(member_dirs):
        link_tree(Path(source), directory / MEMBERS / str(i))
    record = _compile_missing(predictor, directory, sample, deadline)
    shell = copy.copy(predictor)  # members are loaded from members/<i>/
    shell.members = []
    with open(directory / PREDICTOR, "wb") as f:
        pickle.dump(shell, f, protocol=pickle.HIGHEST_PROTOCOL)
    compiled.share_rows(predictor)
    return {"format": FORMAT, "member_dirs": len(member_dirs)}, record


def member_files(directory: Path, count: int) -> dict[str, dict[str, Any]]:
    """The manifest entries of the member copies under `directory`: their own manifests'
    entries (not hashed again) and their manifests themselves (hashed)."""
    files: dict[str, dict[str, Any]] = {}
    for i in range(count):
        member = directory / MEMBERS / str(i)
        prefix = f"{MEMBERS}/{i}/"
        files.update({prefix + n: e for n, e in manifest.read(member)["files"].items()})
        files[prefix + MANIFEST] = manifest.entry(member / MANIFEST)
    return files


def link_tree(source: Path, target: Path) -> None:
    """Copy model directory `source` to `target` as hard links: the files its manifest
    lists (a composite's list its members' too) and the manifest itself."""
    if not (source / MANIFEST).is_file():
        raise FileNotFoundError(f"{source} is not a model directory (no {MANIFEST})")
    for name in [*manifest.read(source)["files"], MANIFEST]:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        _link(source / name, destination)


def _link(source: Path, destination: Path, replace: bool = False) -> None:
    """Hard-link `source` at `destination` (a copy on another filesystem); with `replace`,
    in place of the file there (renamed over it: it may be a link too)."""
    if replace:
        manifest.replace(destination, lambda path: _link(source, path))
        return
    try:
        os.link(source, destination)
    except OSError as exc:  # another filesystem, or one without hard links
        log.debug("copying %s (no hard link: %s)", source, exc)
        shutil.copy2(source, destination)


def read_members(predictor: Any, directory: Path, metadata: dict[str, Any],
                 read: Callable[[Path], Any]) -> None:
    """Give a composite unpickled from `directory` its members: `read(member_dir)` for
    each of members/<i>/ (the composite's manifest was verified, covering them)."""
    if metadata.get("format", 1) >= FORMAT and "member_dirs" in metadata:
        predictor.members = [read(directory / MEMBERS / str(i))
                             for i in range(int(metadata["member_dirs"]))]


def _compile_missing(predictor: Any, root: Path, sample: pd.DataFrame | None,
                     deadline: float | None) -> dict[str, Any]:
    """Compile the single candidates that have no compiled path in their member copies
    (their trial ran out of time), then record which have one, and which tree models
    have none ("uncompiled": they answer on the Python path). Members of a format-1
    composite inside (forests in its own files) are left as they are; so are members
    whose compile failed for a reason other than time (it would fail again)."""
    paths = compiled.forest_paths(predictor, root)
    here: dict[str, dict[str, Any]] = {}
    # compiled already or here, by their copy's pickle's inode: a candidate in a stack and
    # beside it is compiled once, and one the stack compiled is not compiled again
    done: dict[tuple[int, int], int] = {}
    for i, (single, path) in enumerate(paths):
        if path.name == compiled.FOREST_FILE and path.is_file() \
                and single.__dict__.get("compiled_") is not None:
            done.setdefault(_inode(path.parent), i)
    for i, (single, path) in enumerate(paths):
        if sample is None or path.name != compiled.FOREST_FILE or path.is_file() \
                or getattr(single, "family", None) not in compiled.CONVERTERS \
                or not retryable(_record(path.parent)):
            continue
        first = done.get(_inode(path.parent))
        if first is not None:
            here[str(i)] = {**(here.get(str(first)) or _record(paths[first][1].parent) or {}),
                            "same_as": first}
            for name in [compiled.FOREST_FILE, compiled.KERNEL_FILE, METADATA]:
                _link(paths[first][1].parent / name, path.parent / name, replace=True)
            single.compiled_ = paths[first][0].compiled_
        else:
            here[str(i)] = compiled.compile_into(single, path.parent, sample, deadline)
            if not path.is_file():
                continue
            _mark_compiled(path.parent, here[str(i)])
            done[_inode(path.parent)] = i
        _refresh_manifests(path.parent, root, [compiled.FOREST_FILE, compiled.KERNEL_FILE,
                                               METADATA])
    record = compiled.members_record(paths, here)
    uncompiled = [_uncompiled(i, path, here) for i, (single, path) in enumerate(paths)
                  if getattr(single, "family", None) in compiled.CONVERTERS
                  and not path.is_file()]
    return {**record, "uncompiled": uncompiled} if uncompiled else record


# the TimeoutError messages of artifacts/compiled: the one failure that time may undo
TIME_REASON = "time allowed for packaging"


def retryable(record: dict[str, Any] | None) -> bool:
    """Whether a single candidate without a compiled path may get one at a composite's
    packaging, from its metadata's "compiled" record: none written, or its trial ran out
    of time (not a mismatch, an unsupported model or a missing compiler)."""
    if not record or record.get("status") == "compiled":
        return True
    return TIME_REASON in str(record.get("reason", ""))


def _uncompiled(i: int, path: Path, here: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Which tree model inside (depth first) answers on the Python path, and why."""
    own = _record(path.parent) if path.name == compiled.FOREST_FILE else None
    reason = (here.get(str(i)) or own or {}).get("reason", "no compiled path")
    candidate = _metadata(path.parent).get("candidate") \
        if path.name == compiled.FOREST_FILE else None
    return {"member": i, "candidate": candidate, "reason": reason}


def _metadata(member: Path) -> dict[str, Any]:
    try:
        return json.loads((member / METADATA).read_text())
    except (OSError, ValueError):
        return {}


def _record(member: Path) -> dict[str, Any] | None:
    """The "compiled" record of a member copy's metadata."""
    return _metadata(member).get("compiled")


def _inode(member: Path) -> tuple[int, int]:
    stat = (member / PREDICTOR).stat()
    return stat.st_dev, stat.st_ino


def _mark_compiled(member: Path, record: dict[str, Any]) -> None:
    """The member copy's metadata says it has a compiled path (a new file, not the link)."""
    metadata = json.loads((member / METADATA).read_text())
    metadata["compiled"] = dict(record, at="composite packaging")
    text = json.dumps(metadata, indent=2)
    manifest.replace(member / METADATA, lambda path: path.write_text(text))


def _refresh_manifests(folder: Path, root: Path, changed: list[str]) -> None:
    """Rewrite the manifests from member copy `folder` up to (not including) `root` for
    the `changed` files of `folder`: hashed anew, the other entries kept."""
    while folder != root:
        files = manifest.read(folder)["files"]
        files.update({name: manifest.entry(folder / name) for name in changed})
        manifest.write(folder, files)
        prefix = f"{MEMBERS}/{folder.name}/"
        changed = [prefix + name for name in [*changed, MANIFEST]]
        folder = folder.parent.parent  # .../members/<i> -> ...
