"""Deleting an ended job everywhere it lives: its store rows (job, candidates, metrics),
its folder in this workspace, its keys in the artifact store (`jobs/<job>`, the model
directories under it and anything trials left there), and this workspace's cached copies
of its models.

Refused, with what to do instead, while:
- the job runs (a live heartbeat; a silent one is marked Failed first, as every reader
  does), since its process would write the rows and files again;
- an endpoint serves one of its models, or a SageMaker model (CreateModel) names one: the
  endpoint's row names the job's key, and every server that starts, refreshes or joins
  later loads the model from there. Keeping those keys would leave half a job behind;
  undeploying first (or CreateModel on a copy: `models/<name>` is its own key) keeps
  both the endpoint's behaviour and the deletion whole.

SageMaker has no DeleteAutoMLJob, so this is the CLI's `tabpilot delete JOB` and the
Python API's; the copy an API job made under its S3OutputPath is the caller's output and
stays, as on SageMaker.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tabpilot.artifacts import manifest
from tabpilot.artifacts.manifest import MANIFEST
from tabpilot.artifacts.store import CACHE_ENV, CACHE_FOLDER, ArtifactStore, key_of
from tabpilot.errors import JobStateError
from tabpilot.jobs import status as st
from tabpilot.jobs.views import check_alive
from tabpilot.store import Store

log = logging.getLogger("tabpilot.jobs")


@dataclass
class Deleted:
    name: str
    rows: int  # candidates whose rows went with the job's
    folder: bool  # this workspace held the job's folder
    objects: int  # objects removed from the artifact store (0: the default store)
    where: str | None  # the artifact store's location of the job's keys, if any


def delete_job(store: Store, workspace: Path, artifacts: ArtifactStore, name: str,
               model_kind: str | None = None, job_kinds: Sequence[str] = ()) -> Deleted:
    """Delete the ended job `name` (NotFoundError when there is none). `model_kind`: the
    store's kind of SageMaker models (their `model_dir` is checked against the job's
    folder); `job_kinds`: resource kinds named after the job (the facade's request)."""
    job = check_alive(store, store.get_job(name))
    if job.status in st.ACTIVE:
        raise JobStateError(f"job {name} is {job.status}; stop it (tabpilot stop {name}) "
                            "and delete it once it has ended")
    job_dir = Path(job.job_dir)
    _refuse_while_used(store, name, job_dir, model_kind)
    digests = _model_digests(job_dir)
    candidates = len(store.list_candidates(name))
    # the rows first: from here on no face lists the job whose files are going
    store.delete_job(name)  # candidates and metrics go with it (ON DELETE CASCADE)
    for kind in job_kinds:
        if store.find_resource(kind, name) is not None:
            store.delete_resource(kind, name)
    objects, where = 0, None
    key = key_of(job_dir, workspace)
    if not artifacts.in_place and key is not None:
        objects, where = artifacts.delete_tree(key), artifacts.where(key)
    held = job_dir.is_dir()
    shutil.rmtree(job_dir, ignore_errors=True)
    _forget_cached(workspace, digests)
    log.info("job %s deleted (%d candidates, %d objects in %s)", name, candidates, objects,
             where or "the workspace")
    return Deleted(name, candidates, held, objects, where)


def _refuse_while_used(store: Store, name: str, job_dir: Path, model_kind: str | None) -> None:
    endpoints = sorted(e.name for e in store.list_endpoints()
                       if e.job == name or _inside(e.model_dir, job_dir))
    if endpoints:
        listed = ", ".join(endpoints)
        raise JobStateError(
            f"job {name} has a model deployed at endpoint {listed}; undeploy it first "
            f"(tabpilot undeploy {endpoints[0]}, or DeleteEndpoint): servers load an "
            "endpoint's model from the job's files whenever they start or refresh")
    if model_kind is None:
        return
    models = sorted(r.name for r in store.list_resources(model_kind)
                    if _inside((r.spec or {}).get("model_dir"), job_dir))
    if models:
        raise JobStateError(f"job {name} has a model used by the SageMaker model "
                            f"{', '.join(models)}; delete it first (DeleteModel)")


def _inside(path: str | None, folder: Path) -> bool:
    if not path:
        return False
    return Path(path).resolve().is_relative_to(folder.resolve())


def _model_digests(job_dir: Path) -> list[str]:
    """The manifests' sha256 of the job's model directories: their cached copies' names."""
    return [manifest.sha256(p) for p in job_dir.glob(f"candidates/*/model/{MANIFEST}")
            if p.is_file()]


def _forget_cached(workspace: Path, digests: list[str]) -> None:
    import os

    cache = Path(os.environ.get(CACHE_ENV) or workspace / CACHE_FOLDER)
    for digest in digests:
        shutil.rmtree(cache / digest, ignore_errors=True)
