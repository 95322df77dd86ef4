"""What a job looks like from outside: the leaderboard and SageMaker-shaped descriptions.

Field names follow DescribeAutoMLJobV2 and ListCandidatesForAutoMLJob where one exists,
so the CLI, the Python API, the HTTP API and the UI all speak the same names.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot.diagnostics.files import RULES, read_rules
from tabpilot.jobs import heartbeat
from tabpilot.jobs import status as st
from tabpilot.jobs.arns import ACCOUNT, REGION, arn  # noqa: F401 (re-exported)
from tabpilot.jobs.selection import (
    REFIT_FULL,
    REFIT_OF,
    REFIT_PARENTS,
    SHORTFALL_SE,
    fast_choice,
    pareto_front,
)
from tabpilot.metrics import METRICS, STANDARD_METRICS
from tabpilot.store import CandidateRow, JobRow, Store
from tabpilot.tasks import ProblemType

log = logging.getLogger("tabpilot.jobs")

AUTOPILOT_MODES = {"auto": "AUTO", "ensembling": "ENSEMBLING", "hpo": "HYPERPARAMETER_TUNING"}
LEADERBOARD_TAIL = ["fit_seconds", "latency_ms_p50", "throughput_rows_s", "model_bytes"]
FORECASTING = "TimeSeriesForecasting"  # a forecasting job's rows: forecast/views.py shapes them


def iso_time(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def leaderboard(store: Store, job: str) -> pd.DataFrame:
    """Completed candidates, best first: rank, name, algorithm, objective, metrics, cost."""
    row = store.get_job(job)
    if row.problem_type == FORECASTING:
        from tabpilot.forecast import views

        return views.leaderboard(store, job)
    metric = METRICS[row.metric] if row.metric else None
    names = STANDARD_METRICS[ProblemType(row.problem_type)] if row.problem_type else []
    all_metrics = store.metrics(job)
    records, parents = [], set()
    for c in store.list_candidates(job):
        if c.status != st.CANDIDATE_COMPLETED:
            continue
        if (c.params or {}).get(REFIT_OF):  # an ensemble of refits at its parent's weights
            parents.add(str(c.params[REFIT_OF]))
        values = all_metrics.get(c.name, {}).get("validation", {})
        records.append({
            "candidate": c.name, "algorithm": c.algorithm, "objective": c.objective,
            **{m: values.get(m) for m in names},
            "fit_seconds": c.fit_seconds, "latency_ms_p50": c.latency_ms_p50,
            "throughput_rows_s": c.throughput_rows_s, "model_bytes": c.model_bytes,
            # on a tie, a model refit on every row first, one trained on a subsample last
            "_partial": {"train+holdout": 0, REFIT_FULL: 0, "train": 1}.get(c.trained_on, 2),
        })
    columns = ["rank", "candidate", "algorithm", "objective", *names, *LEADERBOARD_TAIL,
               "pareto"]
    if not records:
        return pd.DataFrame(columns=columns)
    board = pd.DataFrame(records)
    ascending = metric is not None and not metric.greater_is_better
    board = board.sort_values(["objective", "_partial", "latency_ms_p50"],
                              ascending=[ascending, True, True],
                              na_position="last", kind="stable").reset_index(drop=True)
    board.insert(0, "rank", range(1, len(board) + 1))
    # on the accuracy-latency front: no other candidate is both as good and as fast
    board["pareto"] = pareto_front(board["objective"].to_numpy(dtype=float),
                                   board["latency_ms_p50"].to_numpy(dtype=float),
                                   metric is None or metric.greater_is_better)
    board = board[columns]
    board.attrs["objective_metric"] = row.metric
    board.attrs[REFIT_PARENTS] = sorted(parents)  # never handed out in their twins' place
    # the default selection's noise measure, once the job's end has computed it
    board.attrs[SHORTFALL_SE] = (row.stats or {}).get(SHORTFALL_SE)
    return board


def refit_names(store: Store, job: str) -> set[str]:
    """The candidates made of bags refit as one model on every row (their scores carried
    over from the bags): the `-full` models and the ensembles holding one."""
    return {c.name for c in store.list_candidates(job) if c.trained_on == REFIT_FULL}


def check_alive(store: Store, job: JobRow) -> JobRow:
    """A job whose process died without finishing (silent past the heartbeat grace) is
    recorded as Failed, its unfinished candidates closed and its leaderboard written from
    the candidates that completed; whichever reader sees it first does that, once."""
    if job.status not in st.ACTIVE:
        return job
    now = time.time()
    beat_before, start_before = now - heartbeat.grace(), now - heartbeat.start_grace()
    silent = job.heartbeat < beat_before if job.heartbeat is not None \
        else job.created < start_before
    # the row read says silent; the store's conditional update decides, once (a reader of
    # a live job writes nothing: the job's own writes are not held up)
    if not silent or not store.fail_silent_job(job.name, beat_before, start_before,
                                                heartbeat.DEAD_REASON):
        return job
    log.warning("job %s: %s; marked Failed", job.name, heartbeat.DEAD_REASON)
    row = store.get_job(job.name)
    try:
        write_leaderboard(store, row)
    except Exception:  # the job's state is recorded; the file is a convenience
        log.exception("writing the leaderboard of the dead job %s failed", job.name)
    return row


def write_leaderboard(store: Store, job: JobRow) -> Path | None:
    """The job's leaderboard.csv from its completed candidates (none: no file)."""
    board = leaderboard(store, job.name)
    if board.empty or not job.job_dir:
        return None
    path = Path(job.job_dir) / "leaderboard.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    board.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def _report_locations(artifact_dir: str | None) -> dict[str, str]:
    """Where the candidate's reports are, once the job (or `tabpilot report`) wrote them."""
    if not artifact_dir:
        return {}
    folder = Path(artifact_dir).parent
    found = {"ModelInsights": folder / "insights.html", "Explainability": folder / "explanations.json"}
    return {k: str(v) for k, v in found.items() if v.is_file()}


def rule_statuses(job: JobRow, candidate: str) -> list[dict[str, Any]]:
    """DescribeTrainingJob's DebugRuleEvaluationStatuses: the candidate's rules.json
    (diagnostics/), each result with the time it was decided; [] before any was."""
    if not job.job_dir:
        return []
    folder = Path(job.job_dir) / "candidates" / candidate
    results = read_rules(folder)
    if not results:
        return []
    try:
        modified = iso_time((folder / RULES).stat().st_mtime)
    except OSError:  # replaced between the read and now
        modified = None
    return [{**r, "LastModifiedTime": modified} for r in results]


def candidate_view(job: JobRow, c: CandidateRow, metrics: dict[str, float | None],
                   rank: int | None = None, pareto: bool | None = None) -> dict[str, Any]:
    metric = METRICS.get(job.metric or "")
    objective_status = {"Completed": "Succeeded", "InProgress": "Pending"}.get(c.status, "Failed")
    view: dict[str, Any] = {
        "CandidateName": c.name,
        "FinalAutoMLJobObjectiveMetric": None if c.objective is None else {
            "Type": "Maximize" if metric and metric.greater_is_better else "Minimize",
            "MetricName": job.metric, "Value": c.objective, "StandardMetricName": job.metric,
        },
        "ObjectiveStatus": objective_status,
        "CandidateStatus": c.status,
        "CandidateSteps": [{"CandidateStepType": "AWS::SageMaker::TrainingJob",
                            "CandidateStepArn": arn("training-job", f"{job.name}-{c.name}"),
                            "CandidateStepName": c.name}],
        "InferenceContainers": [] if not c.artifact_dir else [{
            "Image": "tabpilot", "ModelDataUrl": c.artifact_dir,
            "Environment": {"SAGEMAKER_PROGRAM": "tabpilot", "TABPILOT_MODEL_DIR": c.artifact_dir},
        }],
        "CreationTime": iso_time(c.created),
        "EndTime": iso_time(c.ended),
        "LastModifiedTime": iso_time(c.ended or c.created),
        "CandidateProperties": {
            "CandidateArtifactLocations": _report_locations(c.artifact_dir),
            "CandidateMetrics": [
                {"MetricName": m, "Value": v, "Set": "Validation", "StandardMetricName": m}
                for m, v in metrics.items()
            ],
        },
        # tabpilot's own fields
        "Rank": rank,
        "Algorithm": c.algorithm,
        "Hyperparameters": c.params,
        "DecisionThreshold": c.threshold,
        "FitSeconds": c.fit_seconds,
        "InferenceLatencyMs": c.latency_ms_p50,
        "ThroughputRowsPerSecond": c.throughput_rows_s,
        "ModelBytes": c.model_bytes,
        "ModelLocation": c.artifact_dir,
        "TrainedOn": c.trained_on,
        "ParetoOptimal": pareto,  # on the leaderboard's accuracy-latency front
        "DebugRuleEvaluationStatuses": rule_statuses(job, c.name),
    }
    if c.failure_reason:
        view["FailureReason"] = c.failure_reason
    return view


def candidates_view(store: Store, job: str) -> dict[str, Any]:
    """ListCandidatesForAutoMLJob: completed candidates best first, then the others."""
    row = store.get_job(job)
    if row.problem_type == FORECASTING:
        from tabpilot.forecast import views

        return views.candidates_view(store, job)
    board = leaderboard(store, job)
    ranks = {name: i + 1 for i, name in enumerate(board["candidate"])}
    front = dict(zip(board["candidate"], board["pareto"].astype(bool), strict=True))
    metrics = store.metrics(job)
    rows = store.list_candidates(job)
    rows.sort(key=lambda c: (ranks.get(c.name, len(ranks) + 1), c.number))
    return {"Candidates": [
        candidate_view(row, c, metrics.get(c.name, {}).get("validation", {}), ranks.get(c.name),
                       front.get(c.name))
        for c in rows
    ]}


def describe_job(store: Store, job: str) -> dict[str, Any]:
    """DescribeAutoMLJobV2's fields, plus tabpilot's own."""
    row = check_alive(store, store.get_job(job))
    if row.problem_type == FORECASTING:
        from tabpilot.forecast import views

        return views.describe_job(store, job)
    req = row.request
    board = leaderboard(store, job)
    best = fast = None
    if row.best_candidate:
        c = store.get_candidate(job, row.best_candidate)
        at = board.index[board["candidate"] == c.name]
        best = candidate_view(row, c, store.metrics(job).get(c.name, {}).get("validation", {}),
                              int(board.at[at[0], "rank"]) if len(at) else None,
                              bool(board.at[at[0], "pareto"]) if len(at) else None)
        metric = METRICS.get(row.metric or "")
        fast = fast_choice(board, c.name, metric is None or metric.greater_is_better)
    ptype = ProblemType(row.problem_type) if row.problem_type else None
    job_dir = Path(row.job_dir)
    leaderboard_csv = job_dir / "leaderboard.csv"
    cands = store.list_candidates(job)
    return {
        "AutoMLJobName": row.name,
        "AutoMLJobArn": arn("automl-job", row.name),
        "AutoMLJobInputDataConfig": [{
            "ChannelType": "training", "ContentType": "text/csv;header=present",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": row.input_uri}},
        }] + ([{"ChannelType": "validation", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": req["validation_data"]}}}]
            if req.get("validation_data") else []),
        "OutputDataConfig": {"S3OutputPath": str(job_dir)},
        "AutoMLJobObjective": {"MetricName": row.metric},
        "AutoMLProblemTypeConfig": {"TabularJobConfig": {
            "TargetAttributeName": row.target,
            "ProblemType": ptype.autopilot_name if ptype else None,
            "Mode": AUTOPILOT_MODES.get(req.get("mode", "auto"), "AUTO"),
            "SampleWeightAttributeName": req.get("sample_weight"),
            "CompletionCriteria": {
                "MaxCandidates": req.get("max_candidates"),
                "MaxRuntimePerTrainingJobInSeconds": req.get("per_trial_time_limit"),
                "MaxAutoMLJobRuntimeInSeconds": req.get("time_limit"),
            },
        }},
        "AutoMLProblemTypeConfigName": "Tabular",
        "CreationTime": iso_time(row.created),
        "EndTime": iso_time(row.ended),
        "LastModifiedTime": iso_time(row.modified),
        "FailureReason": row.failure_reason,
        # reports that failed (ExplainabilityError, ModelInsightsError): the job still completed
        "PartialFailureReasons": [{"PartialFailureMessage": m}
                                  for m in (row.stats or {}).get("partial_failures", [])],
        "BestCandidate": best,
        "AutoMLJobStatus": row.status,
        "AutoMLJobSecondaryStatus": row.secondary_status,
        "AutoMLJobArtifacts": {k: str(job_dir / f) for k, f in (
            ("DataExplorationNotebookLocation", "DataExploration.ipynb"),
            ("CandidateDefinitionNotebookLocation", "CandidateDefinitions.ipynb"))
            if (job_dir / f).exists()},
        "ResolvedAttributes": {
            "AutoMLJobObjective": {"MetricName": row.metric},
            "CompletionCriteria": {"MaxCandidates": req.get("max_candidates"),
                                   "MaxAutoMLJobRuntimeInSeconds": req.get("time_limit")},
            "AutoMLProblemTypeResolvedAttributes": {"TabularResolvedAttributes": {
                "ProblemType": ptype.autopilot_name if ptype else None}},
        },
        # tabpilot's own fields
        "ResolvedMode": AUTOPILOT_MODES.get(row.mode, row.mode),
        "Workspace": str(job_dir.parent.parent),
        "JobDirectory": str(job_dir),
        "LeaderboardLocation": str(leaderboard_csv) if leaderboard_csv.exists() else None,
        "CandidateCounts": {s: sum(1 for c in cands if c.status == s)
                            for s in ("Completed", "Failed", "Stopped", "InProgress")},
        "DataWarnings": (row.stats or {}).get("warnings", []),
        # what was inferred rather than given, and why ("2 distinct values -> binary")
        "InferenceReasons": (row.stats or {}).get("reasons", {}),
        "DataInsights": (row.stats or {}).get("insights", []),
        # a Parquet dataset larger than the job's memory: searched and refit on samples
        "TrainingSample": (row.stats or {}).get("sample"),
        "DataExplorationLocation": str(job_dir / "data_exploration.json")
        if (job_dir / "data_exploration.json").exists() else None,
        "ElapsedSeconds": (row.stats or {}).get("seconds"),
        # which reports the job wrote in its time share, and which it skipped and why
        "Reports": (row.stats or {}).get("reports"),
        "MaxLatencyMs": req.get("max_latency_ms"),
        "SelectionNote": (row.stats or {}).get("selection_note"),
        # the stacking layer: built (its candidate, objective, members), skipped or failed, why
        "Stacking": (row.stats or {}).get("stacking"),
        # nearly as good as the best candidate (FAST_TOLERANCE, one standard error of the
        # difference) and much faster, if any
        "FastCandidate": fast,
    }
