"""The artifact store's contract: every test runs on each implementation, a local folder
and S3 (a real SeaweedFS server with signed requests; marked `cluster`, so `make test`
runs the folder half and `make test-cluster` the S3 half)."""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import pytest

from tabpilot.artifacts import load, verify
from tabpilot.artifacts.manifest import MANIFEST, PREDICTOR
from tabpilot.artifacts.remote import FsspecArtifactStore
from tabpilot.artifacts.store import (
    LISTING,
    ArtifactStoreError,
    LocalArtifactStore,
    digest,
    fetch_url,
    for_workspace,
    local_copy,
)
from tabpilot.errors import ModelIntegrityError, NotFoundError
from tabpilot.settings import ARTIFACTS_ENV

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))
from servinglib import build_model, churn_table  # noqa: E402
from storelib import Backend  # noqa: E402

KEY = "jobs/j1/candidates/c1/model"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("built") / "model", n_estimators=10)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_published_model_comes_back_verified_and_predicts_the_same(
        backend: Backend, model_dir: Path) -> None:
    store = backend.store
    assert not store.exists(KEY)
    store.put(model_dir, KEY)
    assert store.exists(KEY)
    copy = store.get(KEY)
    assert _files(copy) == _files(model_dir)  # exactly the model's files, nothing beside
    verify(copy)
    rows = churn_table(20, seed=3).drop(columns="label")
    assert (load(copy).predict(rows) == load(model_dir).predict(rows)).all()
    assert store.get(KEY) == copy  # a second read is the same verified copy


def test_a_folder_of_reports_round_trips_with_nested_files(backend: Backend,
                                                          tmp_path: Path) -> None:
    job = tmp_path / "job"
    (job / "candidates" / "c1").mkdir(parents=True)
    (job / "leaderboard.csv").write_text("candidate,score\nc1,0.9\n")
    (job / "candidates" / "c1" / "insights.html").write_text("<html>insights</html>")
    (job / "DataExploration.ipynb").write_bytes(b"{}")
    listing = backend.store.put(job, "jobs/j1")
    assert sorted(listing["files"]) == ["DataExploration.ipynb", "candidates/c1/insights.html",
                                        "leaderboard.csv"]
    assert _files(backend.store.get("jobs/j1")) == _files(job)


def test_put_of_chosen_files_publishes_only_those(backend: Backend, tmp_path: Path) -> None:
    job = tmp_path / "job"
    (job / "candidates" / "c1" / "model").mkdir(parents=True)
    (job / "job.json").write_text("{}")
    (job / "candidates" / "c1" / "model" / "big.bin").write_bytes(b"x" * 10)
    listing = backend.store.put(job, "jobs/j1", files=["job.json"])
    assert list(listing["files"]) == ["job.json"]
    assert _files(backend.store.get("jobs/j1")) == {"job.json": b"{}"}


def test_list_finds_every_published_key_under_a_prefix(backend: Backend,
                                                      model_dir: Path) -> None:
    store = backend.store
    store.put(model_dir, "jobs/j1/candidates/c1/model")
    store.put(model_dir, "jobs/j1/candidates/c2/model")
    store.put(model_dir, "models/m1")
    assert store.list("jobs/j1") == ["jobs/j1/candidates/c1/model",
                                     "jobs/j1/candidates/c2/model"]
    assert store.list() == ["jobs/j1/candidates/c1/model", "jobs/j1/candidates/c2/model",
                            "models/m1"]
    assert store.list("nothing/here") == []


def test_delete_removes_the_key_and_only_it(backend: Backend, model_dir: Path) -> None:
    store = backend.store
    store.put(model_dir, "models/a")
    store.put(model_dir, "models/b")
    assert store.delete("models/a") is True
    assert not store.exists("models/a") and store.exists("models/b")
    assert store.delete("models/a") is False
    with pytest.raises(NotFoundError, match="nothing is published at"):
        store.get("models/a")
    verify(store.get("models/b"))


def test_a_second_put_replaces_the_first_without_stale_files(backend: Backend,
                                                            tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "old.txt").write_text("old")
    (first / "same.txt").write_text("one")
    (second / "same.txt").write_text("two")
    backend.store.put(first, "jobs/j1")
    backend.store.put(second, "jobs/j1")
    assert _files(backend.store.get("jobs/j1")) == {"same.txt": b"two"}


def test_a_directory_without_its_listing_is_not_published(backend: Backend,
                                                         model_dir: Path) -> None:
    """The listing is written last: files uploaded by a put that died before it are no
    directory at all, so a half-written model never reads as one."""
    store = backend.store
    store.put(model_dir, KEY)
    store._remove([KEY + LISTING])  # as a put cut short before its last write leaves it
    assert not store.exists(KEY) and KEY not in store.list()
    with pytest.raises(NotFoundError):
        store.get(KEY)


def test_a_tampered_object_refuses_to_load_with_one_line(backend: Backend,
                                                        model_dir: Path) -> None:
    store = backend.store
    store.put(model_dir, KEY)
    data = bytearray((model_dir / PREDICTOR).read_bytes())
    data[len(data) // 2] ^= 0xFF
    backend.overwrite(f"{KEY}/{PREDICTOR}", bytes(data))
    with pytest.raises(ModelIntegrityError) as caught:
        store.get(KEY)
    message = str(caught.value)
    assert "\n" not in message and store.where(f"{KEY}/{PREDICTOR}") in message
    assert store.where(KEY).startswith(store.url + "/")  # the whole location, as given
    assert "does not match its sha256" in message


def test_a_tampered_manifest_and_listing_together_still_refuse_to_load(
        backend: Backend, model_dir: Path) -> None:
    """The listing is a check on transport; the model's own manifest is checked again by
    `load`, so rewriting the listing to match a changed file does not get it loaded."""
    import json

    store = backend.store
    listing = store.put(model_dir, KEY)
    data = (model_dir / PREDICTOR).read_bytes() + b"\0"
    backend.overwrite(f"{KEY}/{PREDICTOR}", data)
    import hashlib

    listing["files"][PREDICTOR] = {"sha256": hashlib.sha256(data).hexdigest(),
                                   "bytes": len(data)}
    backend.overwrite(KEY + LISTING, json.dumps(listing).encode())
    with pytest.raises(ModelIntegrityError, match="does not match its sha256 in manifest.json"):
        load(store.get(KEY))


def test_a_broken_model_directory_is_never_published(backend: Backend, model_dir: Path,
                                                     tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / PREDICTOR).write_bytes(b"not the model")
    with pytest.raises(ModelIntegrityError):
        backend.store.put(broken, KEY)
    assert not backend.store.exists(KEY)


def test_keys_with_dot_dot_parts_are_refused(backend: Backend, model_dir: Path) -> None:
    for key in ("../outside", "jobs/../../x", ""):
        with pytest.raises(ArtifactStoreError, match="not a relative path"):
            backend.store.put(model_dir, key)


def test_the_cache_is_named_by_the_model_manifest(backend: Backend, model_dir: Path) -> None:
    listing = backend.store.put(model_dir, KEY)
    assert digest(listing) == listing["files"][MANIFEST]["sha256"]
    if isinstance(backend.store, FsspecArtifactStore):
        assert backend.store.get(KEY).name == digest(listing)


# -- opening: the default, the settings, a URL -------------------------------------------
def test_the_default_store_is_the_workspace_itself(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ARTIFACTS_ENV, raising=False)
    store = for_workspace(tmp_path / "ws")
    assert isinstance(store, LocalArtifactStore) and store.in_place
    missing = tmp_path / "ws" / "jobs" / "j" / "candidates" / "c" / "model"
    assert local_copy(missing, tmp_path / "ws", store) == missing  # as before: no lookup


def test_the_environment_names_the_store(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ARTIFACTS_ENV, str(tmp_path / "shared"))
    store = for_workspace(tmp_path / "ws")
    assert isinstance(store, LocalArtifactStore) and not store.in_place
    assert store.root == (tmp_path / "shared").resolve()
    assert for_workspace(tmp_path / "ws", url=str(tmp_path / "other")).root == \
        (tmp_path / "other").resolve()  # an argument beats the environment


def test_a_workspace_reads_what_another_published(tmp_path: Path, model_dir: Path) -> None:
    shared = LocalArtifactStore(tmp_path / "shared")
    shared.put(model_dir, KEY)
    elsewhere = tmp_path / "ws2"
    path = local_copy(elsewhere / KEY, elsewhere, shared)
    verify(path)
    with pytest.raises(NotFoundError, match="neither published in the artifact store"):
        local_copy(elsewhere / "models" / "nope", elsewhere, shared)


def test_fetch_url_reads_a_published_folder(tmp_path: Path, model_dir: Path) -> None:
    LocalArtifactStore(tmp_path / "shared").put(model_dir, KEY)
    verify(fetch_url(str(tmp_path / "shared" / KEY)))


@pytest.mark.cluster
def test_fetch_url_reads_a_published_s3_key(s3_prefix: str, model_dir: Path,
                                            tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABPILOT_ARTIFACTS_CACHE", str(tmp_path / "cache"))
    FsspecArtifactStore(s3_prefix, tmp_path / "c1").put(model_dir, KEY)
    copy = fetch_url(f"{s3_prefix}/{KEY}")
    assert copy.is_relative_to(tmp_path / "cache")
    verify(copy)


@pytest.mark.cluster
def test_unsigned_and_wrongly_signed_requests_are_refused(s3_prefix: str, seaweed) -> None:
    bucket_path = s3_prefix.split("://", 1)[1]
    seaweed.filesystem().pipe_file(f"{bucket_path}/x", b"secret")
    import s3fs

    for fs in (s3fs.S3FileSystem(anon=True, skip_instance_cache=True,
                                 client_kwargs={"endpoint_url": seaweed.endpoint}),
               s3fs.S3FileSystem(key="tabpilot-test", secret="wrong", skip_instance_cache=True,
                                 client_kwargs={"endpoint_url": seaweed.endpoint})):
        with pytest.raises(PermissionError):
            fs.cat_file(f"{bucket_path}/x")


@pytest.mark.cluster
def test_check_names_a_missing_bucket(s3_env, tmp_path: Path) -> None:
    with pytest.raises(ArtifactStoreError, match="no bucket 'no-such-bucket'"):
        FsspecArtifactStore("s3://no-such-bucket/p", tmp_path).check()


def test_an_unreachable_s3_endpoint_is_one_line_within_seconds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("s3fs", reason="the s3 extra is not installed")
    from servinglib import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    outcome: list[BaseException] = []

    def check() -> None:
        try:
            FsspecArtifactStore("s3://bucket/prefix", tmp_path).check()
        except BaseException as exc:  # noqa: BLE001 (asserted below, in the test's thread)
            outcome.append(exc)

    worker = threading.Thread(target=check, daemon=True)
    worker.start()
    worker.join(300)  # a hang guard: botocore's defaults would retry for many minutes
    assert not worker.is_alive(), "the check of an unreachable store did not end"
    assert len(outcome) == 1 and isinstance(outcome[0], ArtifactStoreError), outcome
    assert "cannot reach the artifact store" in str(outcome[0])
    assert "\n" not in str(outcome[0])


def test_the_cli_refuses_an_unreachable_store_with_exit_2(
        tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """At start, before reading anything: one line on stderr, exit code 2, no traceback."""
    pytest.importorskip("s3fs", reason="the s3 extra is not installed")
    from servinglib import free_port

    monkeypatch.setenv(ARTIFACTS_ENV, "")  # the CLI sets it for its children: undone after
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    table = tmp_path / "t.csv"
    churn_table(60).to_csv(table, index=False)
    done = cli("--artifacts", "s3://bucket/p", "run", str(table), "--target", "label",
               workspace=tmp_path / "ws")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the artifact store s3://bucket/p" in lines[0]
    assert not (tmp_path / "ws").exists()
