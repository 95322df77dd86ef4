"""`tabpilot delete JOB`: an ended job removed from the store, the workspace and the
artifact store (`jobs/deleting.py` says what is refused and why)."""

from __future__ import annotations

from tabpilot import names
from tabpilot.cli import Workspace, _store, app, say


@app.command()
def delete(job: str, workspace: Workspace = None) -> None:
    """Delete an ended job: its rows, its folder and its files in the artifact store
    (--artifacts). Refused while it runs, or while an endpoint or a SageMaker model uses
    one of its models (undeploy first)."""
    from tabpilot.api.hosting import MODEL
    from tabpilot.api.jobs import KIND
    from tabpilot.artifacts.store import for_workspace
    from tabpilot.config import workspace_path
    from tabpilot.jobs.deleting import delete_job

    name = names.check(job, "job")
    store = _store(workspace, create=False)
    root = workspace_path(workspace)
    done = delete_job(store, root, for_workspace(root), name, model_kind=MODEL,
                      job_kinds=(KIND,))
    parts = [f"{done.rows} candidate(s)"]
    if done.folder:
        parts.append("its folder")
    if done.where is not None:
        parts.append(f"{done.objects} object(s) under {done.where}")
    say(f"job {name} deleted: {', '.join(parts)}")
