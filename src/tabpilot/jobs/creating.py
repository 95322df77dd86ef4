"""A job's creation: the time limit checked against the table, the job's row and
`job.json`, the data analysis (insights, leak warnings, the unexecuted DataExploration
notebook), the monitoring baseline, and the analysis handed to the caller's progress.

A mixin of JobRunner (its store, request, name, progress and `_phase`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.data.prepare import Prepared
from tabpilot.data.profile import profile
from tabpilot.errors import ConfigError, JobStateError
from tabpilot.jobs import shares, stacking
from tabpilot.jobs import status as st
from tabpilot.monitor import JOB_FOLDER as MONITORING_FOLDER
from tabpilot.monitor.baseline import write_baseline
from tabpilot.reports import definitions
from tabpilot.reports.notebooks import exploration_notebook
from tabpilot.tracking.dataset import JOB_KEY as DATASET_KEY
from tabpilot.tracking.dataset import dataset_sha256

log = logging.getLogger("tabpilot.jobs")

AUTO_HPO_BYTES = 100 * 2**20  # auto mode: ensembling below this much data, hpo above


def resolve_mode(mode: str, prepared: Prepared) -> str:
    """Autopilot's AUTO: ENSEMBLING for data under ~100 MB in memory, else HYPERPARAMETER_TUNING."""
    if mode != "auto":
        return mode
    return "ensembling" if frame_bytes(prepared.X) < AUTO_HPO_BYTES else "hpo"


def frame_bytes(X: pd.DataFrame, sample_rows: int = 100_000) -> int:
    """`X`'s in-memory size as pandas' deep count gives it, with the Python objects of
    text columns measured on `sample_rows` evenly spaced rows and scaled: the deep count
    visits every object (5 s for 1M rows of text, a minute for 10M) and a sample gives
    the same size to within a percent."""
    shallow = X.memory_usage(deep=False, index=False)
    objects = [c for c in X.columns if X[c].dtype == object]
    if len(X) <= sample_rows or not objects:
        return int(X.memory_usage(deep=True, index=False).sum())
    rows = np.linspace(0, len(X) - 1, sample_rows).astype(np.int64)
    deep = X[objects].iloc[rows].memory_usage(deep=True, index=False)
    return int(shallow.drop(objects).sum() + (deep * (len(X) / sample_rows)).sum())


class Creating:
    def _check_time_limit(self, prepared: Prepared, read_seconds: float,
                          spent_seconds: float) -> None:
        """Refuse, before anything is saved, a limit too short to leave a model."""
        rows, columns = prepared.X.shape
        needed = shares.minimum_time_limit(rows, columns, read_seconds, spent_seconds)
        if self.request.time_limit < needed:
            raise ConfigError(
                f"a time limit of {self.request.time_limit:g}s is too short for this table "
                f"({rows:,} rows x {columns} columns; reading it took {read_seconds:.1f}s, "
                f"{spent_seconds:.1f}s spent so far): a "
                f"job needs at least {needed}s to train a first model; pass --time-limit "
                f"{needed} (time_limit={needed}) or more")

    def _create(self, prepared: Prepared, uri: str, job_dir: Path, source: Any) -> None:
        r = self.request
        self.mode = resolve_mode(r.mode, prepared)
        schema = prepared.schema.to_dict()
        fields = dict(status=st.IN_PROGRESS, secondary_status=st.ANALYZING,
                      target=r.target, input_uri=uri, problem_type=prepared.problem_type.value,
                      metric=prepared.metric.name, mode=self.mode,
                      request=r.model_dump(mode="json"),
                      job_dir=str(job_dir), pid=os.getpid())
        if self.previous is not None:
            del fields["status"]
            if not self.store.reopen_job(self.name, **fields):
                raise JobStateError(f"job {self.name!r} is {self.store.get_job(self.name).status}"
                                    " now (resumed by another process?); it was not resumed")
        elif self.adopt:
            if self.store.get_job(self.name).status == st.STOPPING:
                del fields["status"]  # a stop asked for while the data loaded still holds
            self.store.update_job(self.name, **fields)
        else:
            self.store.create_job(name=self.name, heartbeat=time.time(), **fields)
        self._start_heartbeat()
        try:
            job_dir.mkdir(parents=True, exist_ok=True)
            # where the candidate notebook reloads the data (absolute, or a copy)
            data = definitions.record_inputs(source, r.validation_data, r.feature_types, job_dir)
            (job_dir / "job.json").write_text(json.dumps({
                "request": r.model_dump(mode="json"),
                "input": uri,
                "data": data,
                DATASET_KEY: dataset_sha256(data, job_dir),  # lineage: `tabpilot lineage`
                "resolved": {
                    "problem_type": prepared.problem_type.value,
                    "metric": prepared.metric.name,
                    "mode": self.mode,
                    "stacking": stacking.resolve(r.stacking, self.mode, r.max_latency_ms),
                    "schema": schema,
                    "rows": len(prepared.y),
                    "classes": prepared.classes,
                    "dropped_rows_missing_target": prepared.dropped_rows,
                    "warnings": prepared.warnings,
                },
            }, indent=2, default=str))
        except BaseException:
            if not self.adopt and self.previous is None:  # an adopted row is kept: its
                self.store.delete_job(self.name)  # creator marks it Failed; a resumed one too
            if self.previous is None:  # a resumed job's folder holds its candidates
                shutil.rmtree(job_dir, ignore_errors=True)
            raise
        try:  # analysis informs; it must never cost the user their job
            analysis = profile(prepared.X, prepared.y, prepared.schema, prepared.problem_type,
                               prepared.classes, r.seed)
            (job_dir / "data_exploration.json").write_text(json.dumps(analysis, indent=1))
        except Exception:
            log.exception("data analysis failed; training goes on without it")
            analysis = {"insights": []}
        else:  # readable and runnable now; executed (plots embedded) after training
            try:
                exploration_notebook(job_dir, self.name, execute=False)
            except Exception:
                log.exception("writing DataExploration.ipynb failed")
        self._write_baseline(prepared, job_dir)
        for insight in analysis["insights"]:  # one line each, before any training
            if insight["kind"] == "target_leakage" and insight["severity"] == "high":
                log.warning("%s; %s (evidence: DataInsights, DataExploration.ipynb)",
                            insight["message"], insight["fix"], extra={"target_leak": insight})
        # a Parquet dataset larger than the job's memory: the sample's sizes and why
        sample = self.sample if self.sample is not None and self.sample.sampled else None
        self.store.update_job(self.name, stats={"rows": len(prepared.y),
                                                "warnings": prepared.warnings,
                                                "insights": analysis["insights"],
                                                "schema": schema,
                                                "reasons": prepared.reasons,
                                                **({"sample": sample.describe()} if sample
                                                   else {})})
        self.progress.analysis = {
            "rows": len(prepared.y), "problem_type": prepared.problem_type.value,
            "metric": prepared.metric.name, "reasons": prepared.reasons,
            "classes": prepared.classes, "schema": schema,
            "mode": self.mode, "insights": analysis["insights"],
            "sample": sample.message() if sample else None}
        self._phase(st.ANALYZING)

    def _write_baseline(self, prepared: Prepared, job_dir: Path) -> None:
        """Model Monitor's statistics and constraints of the training features (target
        left out), from the table in memory: what `tabpilot monitor run` compares traffic
        with (1M rows x 15 columns: 1.9 s). A failure costs the job nothing."""
        try:
            write_baseline(prepared.X, job_dir / MONITORING_FOLDER, seed=self.request.seed)
        except Exception:  # `tabpilot monitor baseline JOB` writes it later from the file
            log.exception("writing the monitoring baseline failed; training goes on")
