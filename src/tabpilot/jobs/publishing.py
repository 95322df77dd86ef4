"""A finished job's files published to the artifact store (`artifacts/store.py`), so that
any machine sharing the metadata store can load its models and read its reports.

Each kept candidate's model directory is its own key (`jobs/<job>/candidates/<c>/model`:
a server loads exactly that, verified by its manifest); the rest of the job folder
(job.json, leaderboard, notebooks, reports, validation files) is the key `jobs/<job>`.
Keys are the workspace paths the store's rows hold, so a row written here names the
published copy everywhere. The default store is the workspace itself: nothing to do.
Every kind of job publishes through here: tabular and text jobs (`Finishing._publish`)
and forecasting jobs (`forecast/job.py`), before their final status. What trials left
under `jobs/<job>/trials` (files handed back by a trial the job never received: one cut
short by the job's end) is removed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from tabpilot.artifacts.manifest import MANIFEST
from tabpilot.artifacts.store import ArtifactStore, key_of
from tabpilot.execution.handback import TRIALS

log = logging.getLogger("tabpilot.jobs")


def publish_job(artifacts: ArtifactStore, workspace: Path, job_dir: Path) -> int:
    """Publish the job's model directories, then its other files; the number of keys
    written (0 with the default store). Models pruned since an earlier publish of this
    job (a resumed one) are removed from the store too."""
    if artifacts.in_place or not job_dir.is_dir():
        return 0
    started = time.monotonic()
    key = key_of(job_dir, workspace)
    if key is None:
        raise ValueError(f"{job_dir} is not inside the workspace {workspace}")
    models = sorted(p.parent for p in job_dir.glob(f"candidates/*/model/{MANIFEST}"))
    published = set()
    for model in models:
        model_key = f"{key}/{model.relative_to(job_dir).as_posix()}"
        # a model published already (a distillation's teacher, handed to the cluster; an
        # earlier run of a resumed job) is not sent again: its manifest names its content
        artifacts.ensure(model, model_key)
        published.add(model_key)
    for old in artifacts.list(f"{key}/candidates"):
        if old not in published:
            artifacts.delete(old)
    inside = {m.relative_to(job_dir).as_posix() + "/" for m in models}
    files = [rel for p in job_dir.rglob("*")
             if p.is_file() and not p.is_symlink()
             and not any((rel := p.relative_to(job_dir).as_posix()).startswith(m) for m in inside)
             and not any(part.startswith((".tmp-", ".new-")) for part in p.parts)]
    artifacts.put(job_dir, key, files)
    artifacts.delete_tree(f"{key}/{TRIALS}")
    log.info("job folder %s published to %s in %.1fs (%d models)", job_dir.name,
             artifacts.where(key), time.monotonic() - started, len(models))
    return len(models) + 1
