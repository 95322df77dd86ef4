"""The one resolver of user-given locations (names: tests/test_names.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tabpilot.roots import AllowedRoots, LocationError


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "root" / "bucket" / "data").mkdir(parents=True)
    (tmp_path / "root" / "bucket" / "data" / "t.csv").write_text("a,b\n1,2\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "root" / "bucket" / "out").symlink_to(tmp_path / "outside")
    (tmp_path / "root" / "bucket" / "in").symlink_to(tmp_path / "root" / "bucket" / "data")
    return tmp_path


def test_s3_uris_map_under_the_s3_root(tree: Path) -> None:
    roots = AllowedRoots([], s3_root=tree / "root")
    assert roots.resolve("s3://bucket/data/t.csv") == str(tree / "root/bucket/data/t.csv")
    assert roots.resolve("s3://bucket/data//t.csv") == str(tree / "root/bucket/data/t.csv")
    assert roots.resolve("s3://bucket/in/t.csv") == str(tree / "root/bucket/data/t.csv")


@pytest.mark.parametrize("uri", [
    "s3:///etc/passwd", "s3://bucket/../../outside", "s3://bucket/data/../../x",
    "s3://bucket/./data", "s3://..", "s3://bucket/out/anything", "s3://Bad_Bucket/x",
    "file:///etc/passwd", "file://host/etc/passwd", "/etc/passwd", "../outside",
    "https://example.com/x", "memory://x", "", "  ", "bad\x00path",
])
def test_locations_outside_the_roots_are_refused(tree: Path, uri: str, monkeypatch) -> None:
    monkeypatch.chdir(tree / "root")
    roots = AllowedRoots([tree / "root" / "bucket" / "data"], s3_root=tree / "root")
    with pytest.raises(LocationError, match="^S3Uri: "):
        roots.resolve(uri, "S3Uri")


def test_local_roots_follow_symlinks_both_ways(tree: Path) -> None:
    roots = AllowedRoots([tree / "root"])
    assert roots.resolve(f"file://{tree}/root/bucket/data/t.csv").endswith("data/t.csv")
    assert roots.contains(tree / "root" / "bucket" / "in" / "t.csv")
    assert not roots.contains(tree / "root" / "bucket" / "out")
    assert not roots.contains(tree / "root-sibling")  # a prefix of the name is not inside


def test_remote_roots_are_prefixes_of_whole_keys(tree: Path) -> None:
    roots = AllowedRoots([], ["s3://data-bucket/team"])
    assert roots.resolve("s3://data-bucket/team/t.csv") == "s3://data-bucket/team/t.csv"
    assert roots.resolve("s3://data-bucket/team") == "s3://data-bucket/team"
    for uri in ("s3://data-bucket/teammate/t.csv", "s3://data-bucket/team/../other",
                "s3://other-bucket/team/t.csv"):
        with pytest.raises(LocationError):
            roots.resolve(uri)
    # with an S3 root, remote roots are folders under it
    mapped = AllowedRoots([], ["s3://bucket/data"], s3_root=tree / "root",
                          s3_root_allowed=False)
    assert mapped.resolve("s3://bucket/data/t.csv") == str(tree / "root/bucket/data/t.csv")
    with pytest.raises(LocationError):
        mapped.resolve("s3://bucket/out/x")


def test_the_cli_default_is_unconfined_unless_roots_are_listed(tree: Path, monkeypatch) -> None:
    monkeypatch.delenv("TABPILOT_ALLOWED_ROOTS", raising=False)
    assert AllowedRoots.unconfined().resolve("/etc/hosts") == "/etc/hosts"
    assert AllowedRoots.unconfined().resolve("s3://b-1/x.csv") == "s3://b-1/x.csv"
    monkeypatch.setenv("TABPILOT_ALLOWED_ROOTS", f"{tree / 'root'}:s3://data-bucket/team")
    confined = AllowedRoots.unconfined()
    assert confined.resolve(str(tree / "root/bucket/data/t.csv"))
    assert confined.resolve("s3://data-bucket/team/x") == "s3://data-bucket/team/x"
    with pytest.raises(LocationError, match="outside the allowed roots"):
        confined.resolve("/etc/hosts")
