"""How a trial's files come back to its job when the trial ran on another machine.

A trial writes its candidate folder (`model/`, `validation_predictions.npy`, the
diagnostics beside them) at `task.output_dir`, a path in the job's workspace. The local
executor's trials run on the job's machine, so that is the end of it. A Ray trial may run
on another node, where that path means nothing.

With an artifact store that is not the workspace itself (`--artifacts s3://...`, or a
folder), the files travel through it, never through a path one host alone can see:

    plan(task, artifacts, workspace)       the job's process, at submit: where the trial
                                           hands back (`jobs/<job>/trials/<trial>`), and
                                           a distillation's teacher published for it
    run_there(task, plan, run)             the node: the trial runs in a scratch folder,
                                           its candidate folder is put under that key
                                           (the listing holds each file's sha256), the
                                           scratch folder is removed
    receive(result, task, artifacts)       the job's process: the files fetched into the
                                           candidate's folder, each checked against the
                                           listing and the model against its manifest,
                                           before the job records the trial; the key is
                                           then removed (the job publishes what it keeps)

A trial whose files cannot be handed back or do not verify comes back Failed with the
reason, never as a candidate whose model is missing. With the default store (the
workspace) nothing is copied: the files stay at the task's path, as before, and a folder
the job cannot see is a Failed trial that says where it was written.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from tabpilot.artifacts.manifest import MANIFEST
from tabpilot.artifacts.store import ArtifactStore, key_of, open_url
from tabpilot.execution.base import TrialResult, TrialTask

TRIALS = "trials"  # beside `candidates` in a job's keys: files on their way to the job
# the standard AWS settings of the job's process travel with each trial, so a node
# reaches the same bucket with the same identity (a node's own are used when the job
# has none set)
AWS_SETTINGS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION")


@dataclass(frozen=True)
class HandBack:
    """Where one trial hands its files back: the store (URL) and the trial's key."""

    url: str
    key: str  # jobs/<job>/trials/<trial>
    teacher: str | None = None  # a distillation's teacher model, published under this key
    env: dict[str, str] = field(default_factory=dict)


def plan(task: TrialTask, artifacts: ArtifactStore | None, workspace: Path | None
         ) -> HandBack | None:
    """The hand-back of `task` (None: the default store, files stay at the task's path).
    A distillation's teacher lives in the job's folder: it is published first (at its own
    key, the one the job's end would publish it under), so the node can read it."""
    if artifacts is None or artifacts.in_place or workspace is None:
        return None
    candidate_dir = Path(os.path.abspath(task.output_dir)).parent
    key = trial_key(candidate_dir, Path(task.output_dir).name, workspace)
    teacher = None
    if task.distill_of and task.distill_of.get("teacher_dir"):
        teacher_dir = Path(task.distill_of["teacher_dir"])
        teacher = key_of(teacher_dir, workspace)
        if teacher is None:
            raise ValueError(f"the teacher {teacher_dir} is not inside the workspace {workspace}")
        artifacts.ensure(teacher_dir, teacher)
    env = {name: os.environ[name] for name in AWS_SETTINGS if os.environ.get(name)}
    return HandBack(artifacts.url, key, teacher, env)


def trial_key(candidate_dir: Path, model_folder: str, workspace: Path) -> str:
    """`jobs/<job>/trials/<candidate>` for a trial writing `candidates/<candidate>/model`
    (`<candidate>-model-refit` for a refit's `model-refit`): never a key the job
    publishes, so a trial's files and the job's kept ones never mix."""
    key = key_of(candidate_dir, workspace)
    if key is None:
        raise ValueError(f"the trial's folder {candidate_dir} is not inside the workspace "
                         f"{workspace}")
    parts = key.split("/")
    name = parts[-1] if model_folder == "model" else f"{parts[-1]}-{model_folder}"
    if len(parts) >= 2 and parts[-2] == "candidates":
        return "/".join([*parts[:-2], TRIALS, name])
    return "/".join([*parts[:-1], TRIALS, name])


def run_there(task: TrialTask, handback: HandBack | None,
              run: Callable[[TrialTask], TrialResult]) -> TrialResult:
    """Run where the trial runs (a Ray worker): `run(task)`, then its files handed back.
    `run` returns a Failed result rather than raising. Without a hand-back the files stay
    at the task's path (the result notes the host, so a job that cannot see them can say
    where they are)."""
    host = socket.gethostname()
    if handback is None:
        result = run(task)
        return replace(result, details={**result.details, "host": host})
    scratch = Path(tempfile.mkdtemp(prefix="tabpilot-trial-"))
    try:
        with _environment(handback.env):
            store = open_url(handback.url, scratch / "cache")
            local = replace(task, output_dir=str(scratch / "candidate" / Path(task.output_dir).name))
            if handback.teacher is not None:
                store.get_into(handback.teacher, scratch / "teacher")
                local = replace(local, distill_of={**(task.distill_of or {}),
                                                   "teacher_dir": str(scratch / "teacher")})
            result = run(local)
            details = {**result.details, "host": host, "written_at": str(scratch)}
            if result.status != "Completed" or result.artifact_dir is None:
                return replace(result, details=details)
            store.put(scratch / "candidate", handback.key)
    except Exception as exc:  # the store unreachable, a teacher that does not verify
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return TrialResult(task.candidate, "Failed", failure_reason=(
            f"handing the trial's files to the artifact store {handback.url} failed on "
            f"{host}: {text}"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return replace(result, artifact_dir=os.path.abspath(task.output_dir),
                   details={**details, "handed_back": handback.key})


def receive(result: TrialResult, task: TrialTask | None = None,
            artifacts: ArtifactStore | None = None) -> TrialResult:
    """Run in the job's process: the result as the job records it. Files handed back
    through the store are fetched into the candidate's folder and verified (listing, then
    the model's manifest) first; a completed trial whose model folder is not visible here
    comes back Failed, naming the host and the fix."""
    if result.status != "Completed" or result.artifact_dir is None:
        return result
    key = result.details.get("handed_back")
    if key is not None and artifacts is not None and task is not None:
        return _fetched(result, task, artifacts, key)
    if (Path(result.artifact_dir) / MANIFEST).is_file():
        return result
    host = result.details.get("host", "another host")
    return _failed(result, f"the trial's model was written on {host} at "
                           f"{result.artifact_dir}, which this job's machine cannot see; "
                           "give every node the workspace at the same path (a shared "
                           "filesystem), or an artifact store (--artifacts s3://...)")


def _fetched(result: TrialResult, task: TrialTask, artifacts: ArtifactStore,
             key: str) -> TrialResult:
    from tabpilot.artifacts.package import verify

    model_dir = Path(task.output_dir)
    try:
        placed = artifacts.get_into(key, model_dir.parent)
        verify(model_dir)
    except Exception as exc:  # a tampered or missing object: never a candidate
        if model_dir.is_dir():
            shutil.rmtree(model_dir, ignore_errors=True)
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:400]
        return _failed(result, f"the trial's files in the artifact store did not verify: {text}")
    finally:
        _forget(artifacts, key)
    details = {k: v for k, v in result.details.items() if k != "handed_back"}
    return replace(result, artifact_dir=task.output_dir,
                   details={**details, "received": sorted(placed)})


def _forget(artifacts: ArtifactStore, key: str) -> None:
    """The trial's key removed: the job keeps its files and publishes what it keeps."""
    try:
        artifacts.delete_tree(key)
    except Exception:  # left for the job's deletion (jobs/deleting.py removes its keys)
        import logging

        logging.getLogger("tabpilot.execution").warning(
            "removing %s from the artifact store failed", artifacts.where(key), exc_info=True)


def _failed(result: TrialResult, reason: str) -> TrialResult:
    return replace(result, status="Failed", objective=None, artifact_dir=None,
                   failure_reason=reason)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """`values` set in os.environ for the block (a Ray worker runs many trials)."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
