"""The training table's identity for lineage: the sha256 of its bytes.

A job records the hash when it is created (job.json's "dataset_sha256"); older jobs are
hashed later from the same bytes: the job folder's copy of the table (kept byte for byte,
see `reports/datafiles.py`), or the recorded file when it is still there. A table passed
as a DataFrame is hashed through its Parquet copy in the job folder, the only file of it
that exists. A remote URI (s3://...) is not read again just to hash it: its hash is None.

A leaf module (paths and the manifest's file hash only) so that `jobs/creating.py` can call it without
pulling the tracking package, or MLflow, into a job.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tabpilot.artifacts.manifest import sha256

log = logging.getLogger("tabpilot.tracking.dataset")

JOB_KEY = "dataset_sha256"  # job.json's key




def dataset_sha256(data: dict[str, Any], job_dir: Path) -> str | None:
    """The hash of the training table a job read, from job.json's "data" record (see
    `reports.datafiles.record_inputs`); None when no local copy of its bytes exists. Never
    raises: a hash informs lineage, it must not cost a job."""
    try:
        for path in _candidates(data, job_dir):
            if path.is_file():
                return sha256(path)
    except (OSError, TypeError, ValueError):
        log.warning("could not hash the training table of %s", job_dir, exc_info=True)
    return None


def _candidates(data: dict[str, Any], job_dir: Path) -> list[Path]:
    """Files holding the same bytes as the table, the job folder's copy first (a local
    file may have been rewritten since; the copy is what the job trained on)."""
    found: list[Path] = []
    given = data.get("input")
    if given and data.get("input_is_copy"):
        found.append(job_dir / given)
    copy = (data.get("copies") or {}).get("input")
    if copy:
        found.append(job_dir / copy)
    if given and not data.get("input_is_copy") and "://" not in str(given):
        found.append(Path(given))
    return found


def job_dataset(job_dir: Path) -> dict[str, Any]:
    """{"sha256", "source", "recorded"} of a job: the hash recorded at creation, else
    computed now from the job's copy or file (`recorded` False). Missing: sha256 None."""
    try:
        record = json.loads((job_dir / "job.json").read_text())
    except (OSError, ValueError):
        return {"sha256": None, "source": None, "recorded": False}
    source = record.get("input")
    if record.get(JOB_KEY):
        return {"sha256": record[JOB_KEY], "source": source, "recorded": True}
    return {"sha256": dataset_sha256(record.get("data") or {}, job_dir), "source": source,
            "recorded": False}
