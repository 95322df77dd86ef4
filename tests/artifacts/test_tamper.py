"""Tampered models are refused before anything in them runs: a changed byte, a file the
manifest does not list, an emptied manifest, a symlink, a swapped kernel (cached or the
model's own); and a served endpoint stays on its last good model."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tabpilot.artifacts import compiled, load, verify
from tabpilot.artifacts.compiled import native
from tabpilot.artifacts.package import MANIFEST, METADATA, PREDICTOR
from tabpilot.errors import ModelIntegrityError
from tabpilot.store import Store

sys.path.insert(0, str(Path(__file__).parent.parent / "serving"))
from servinglib import build_model, churn_table  # noqa: E402


class Marker:
    """A pickle that, when loaded, writes a file: proof that a crafted pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (self.path, "pwned"))


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("good") / "model")


@pytest.fixture
def model(good: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(good, copy)
    return copy


def _crafted(model: Path, marker: Path) -> None:
    with open(model / PREDICTOR, "wb") as f:
        pickle.dump(Marker(marker), f)


def test_a_changed_byte_is_refused(model: Path, tmp_path: Path) -> None:
    data = bytearray((model / PREDICTOR).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model / PREDICTOR).write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match its sha256"):
        load(model)


def test_a_file_the_manifest_does_not_list_is_refused(model: Path) -> None:
    (model / "extra.pkl").write_bytes(b"anything")
    with pytest.raises(ModelIntegrityError, match="extra.pkl is not in manifest.json"):
        load(model)


def test_an_emptied_manifest_is_refused_before_the_pickle_runs(model: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    _crafted(model, marker)
    (model / MANIFEST).write_text(json.dumps({"files": {}}))
    with pytest.raises(ModelIntegrityError, match="not in manifest.json"):
        load(model)
    assert not marker.exists()


def test_a_manifest_without_the_pickle_is_refused(tmp_path: Path) -> None:
    """The folder the review crafted: {"files": {}} as manifest, and only a pickle."""
    folder = tmp_path / "crafted"
    folder.mkdir()
    marker = tmp_path / "ran"
    _crafted(folder, marker)
    (folder / MANIFEST).write_text(json.dumps({"files": {}}))
    with pytest.raises(ModelIntegrityError):
        load(folder)
    (folder / PREDICTOR).unlink()
    with pytest.raises(ModelIntegrityError, match=f"does not list {PREDICTOR}"):
        verify(folder)
    assert not marker.exists()


@pytest.mark.parametrize("manifest", ["not json", "[]", '{"files": {"a": 1}}', '{"other": {}}'])
def test_a_malformed_manifest_is_refused(model: Path, manifest: str) -> None:
    (model / MANIFEST).write_text(manifest)
    with pytest.raises(ModelIntegrityError, match="not a model manifest"):
        verify(model)


def test_a_listed_name_that_leaves_the_folder_is_refused(model: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.pkl"
    outside.write_bytes((model / PREDICTOR).read_bytes())
    listed = json.loads((model / MANIFEST).read_text())
    listed["files"]["../outside.pkl"] = listed["files"][PREDICTOR]
    (model / MANIFEST).write_text(json.dumps(listed))
    with pytest.raises(ModelIntegrityError, match="missing"):
        verify(model)


def test_a_symlink_in_the_model_is_refused(model: Path, tmp_path: Path) -> None:
    real = tmp_path / "real-metadata.json"
    shutil.move(model / METADATA, real)
    (model / METADATA).symlink_to(real)  # same bytes, so the hash alone would pass
    with pytest.raises(ModelIntegrityError, match="symbolic link"):
        load(model)


def test_a_swapped_model_kernel_is_refused(model: Path) -> None:
    (model / compiled.KERNEL_FILE).write_bytes(b"\x7fELF" + b"\0" * 64)
    with pytest.raises(ModelIntegrityError, match="compiled-kernel.so"):
        load(model)


def test_a_kernel_changed_after_the_manifest_check_never_loads(model: Path) -> None:
    """`verified` hashes the bytes it loads, so a file swapped after verify() is refused."""
    listed = json.loads((model / MANIFEST).read_text())
    expected = listed["files"][compiled.KERNEL_FILE]["sha256"]
    (model / compiled.KERNEL_FILE).write_bytes(b"swapped after the check")
    native._VERIFIED.pop(expected, None)
    with pytest.raises(ModelIntegrityError, match="does not match its sha256"):
        native.verified(model / compiled.KERNEL_FILE, expected)


def _evil_library(folder: Path, marker: Path) -> Path:
    """A shared library whose constructor writes `marker` when anything loads it."""
    source = folder / "evil.c"
    source.write_text('#include <stdio.h>\n__attribute__((constructor)) static void run(void) '
                      f'{{ FILE *f = fopen("{marker}", "w"); if (f) fclose(f); }}\n'
                      "int tp_abi_version(void) { return -1; }\n")
    target = folder / "evil.so"
    subprocess.run([native.compiler() or "cc", "-shared", "-fPIC", "-o", str(target),
                    str(source)], check=True, capture_output=True)
    return target


@pytest.mark.skipif(native.compiler() is None, reason="needs a C compiler to build the fake")
def test_a_swapped_cached_kernel_never_loads(good: Path, tmp_path: Path, monkeypatch) -> None:
    """A model loads its own verified kernel: whatever lies in the cache is not loaded."""
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("TABPILOT_CACHE", str(cache))
    marker = tmp_path / "evil-ran"
    shutil.copyfile(_evil_library(tmp_path, marker), cache / native.library_name())
    served = load(good)
    assert served.compiled
    rows = churn_table(20, seed=3).drop(columns="label")
    assert list(served.predict(rows)) == list(load(good).predict(rows))
    assert not marker.exists()


def test_a_cache_others_can_write_is_not_used(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "shared-cache"
    cache.mkdir()
    monkeypatch.setenv("TABPILOT_CACHE", str(cache))
    built = native.library()
    assert built.parent == cache
    cache.chmod(0o777)  # a folder anyone may write
    try:
        assert not native._private(built)
    finally:
        cache.chmod(0o755)
    assert native._private(built)


def test_an_endpoint_keeps_its_last_good_model(good: Path, tmp_path: Path) -> None:
    """The registry loads the tampered version, refuses it, and serves the good one on."""
    from tabpilot.serving.app import EndpointRegistry

    workspace = tmp_path / "ws"
    store = Store.for_workspace(workspace)
    bad = tmp_path / "bad" / "model"
    shutil.copytree(good, bad)
    marker = tmp_path / "ran"
    _crafted(bad, marker)
    store.put_endpoint("churn", str(good))
    registry = EndpointRegistry(store, workspace / "capture")
    registry.refresh()
    first = registry.loaded("churn")
    assert first is not None
    store.put_endpoint("churn", str(bad))
    registry.refresh()
    live = registry.loaded("churn")
    assert live is first and live.version == first.version  # still the good model
    version, reason = registry.failures["churn"]
    assert version > first.version and "sha256" in reason
    assert not marker.exists()
