"""A forecasting job from outside: its leaderboard and DescribeAutoMLJobV2 /
ListCandidatesForAutoMLJob shapes, read from its store rows and its folder.

`jobs/views.py` hands a job whose problem type is TimeSeriesForecasting here, so the
CLI, the Python API and the SageMaker facade answer for both kinds of job through one
door. The shapes are Autopilot's for a TimeSeriesForecastingJobConfig job: the request
under `AutoMLProblemTypeConfig.TimeSeriesForecastingJobConfig`, every candidate's
backtest metrics as `CandidateMetrics` and `BacktestResults` among its artifact
locations; the leaderboard has the tabular one's columns, so it draws the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot.forecast.request import OBJECTIVES
from tabpilot.store import CandidateRow, JobRow, Store

BACKTEST_RESULTS = "backtest_results.json"
EXPLANATIONS = "explanations.json"  # forecast/job.py writes it per candidate
NOTEBOOK = "DataExploration.ipynb"
TAIL = ["fit_seconds", "latency_ms_p50", "throughput_rows_s", "model_bytes"]


def leaderboard(store: Store, job: str) -> pd.DataFrame:
    """Completed candidates, best first (every forecasting metric is lower-is-better; the
    ensemble first on a tie, as the job ranks them), in the tabular leaderboard's columns."""
    metrics = store.metrics(job)
    records = [{"candidate": c.name, "algorithm": c.algorithm, "objective": c.objective,
                **{m: metrics.get(c.name, {}).get("validation", {}).get(m) for m in OBJECTIVES},
                "fit_seconds": c.fit_seconds, "latency_ms_p50": c.latency_ms_p50,
                "throughput_rows_s": c.throughput_rows_s, "model_bytes": c.model_bytes,
                "_tie": c.artifact_dir is None}
               for c in store.list_candidates(job) if c.status == "Completed"]
    columns = ["rank", "candidate", "algorithm", "objective", *OBJECTIVES, *TAIL, "pareto"]
    if not records:
        return pd.DataFrame(columns=columns)
    board = (pd.DataFrame(records).sort_values(["objective", "_tie"], na_position="last",
                                               kind="stable").reset_index(drop=True))
    board.insert(0, "rank", range(1, len(board) + 1))
    board["pareto"] = False  # no latency is measured: no accuracy-latency front
    board.attrs["objective_metric"] = store.get_job(job).metric
    return board[columns]


def candidate_view(job: JobRow, c: CandidateRow, metrics: dict[str, float | None],
                   rank: int | None = None) -> dict[str, Any]:
    from tabpilot.jobs.views import arn, iso_time

    backtests = Path(job.job_dir) / BACKTEST_RESULTS
    explained = Path(job.job_dir) / "candidates" / c.name / EXPLANATIONS
    view: dict[str, Any] = {
        "CandidateName": c.name,
        "FinalAutoMLJobObjectiveMetric": None if c.objective is None else {
            "Type": "Minimize", "MetricName": job.metric, "Value": c.objective,
            "StandardMetricName": job.metric},
        "ObjectiveStatus": {"Completed": "Succeeded", "InProgress": "Pending"}.get(c.status,
                                                                                  "Failed"),
        "CandidateStatus": c.status,
        "CandidateSteps": [{"CandidateStepType": "AWS::SageMaker::TrainingJob",
                            "CandidateStepArn": arn("training-job", f"{job.name}-{c.name}"),
                            "CandidateStepName": c.name}],
        "InferenceContainers": [] if not c.artifact_dir else [{
            "Image": "tabpilot", "ModelDataUrl": c.artifact_dir,
            "Environment": {"SAGEMAKER_PROGRAM": "tabpilot",
                            "TABPILOT_MODEL_DIR": c.artifact_dir}}],
        "CreationTime": iso_time(c.created),
        "EndTime": iso_time(c.ended),
        "LastModifiedTime": iso_time(c.ended or c.created),
        "CandidateProperties": {
            # Autopilot's shape needs Explainability beside BacktestResults: both or none
            "CandidateArtifactLocations": {"Explainability": str(explained),
                                           "BacktestResults": str(backtests)}
            if backtests.is_file() and explained.is_file() else {},
            "CandidateMetrics": [
                {"MetricName": m, "Value": v, "Set": "Validation", "StandardMetricName": m}
                for m, v in metrics.items() if m in OBJECTIVES and v is not None]},
        # tabpilot's own fields
        "Rank": rank,
        "Algorithm": c.algorithm,
        "Hyperparameters": c.params,
        "FitSeconds": c.fit_seconds,
        "InferenceLatencyMs": None,
        "ModelBytes": c.model_bytes,
        "ModelLocation": c.artifact_dir,
        "TrainedOn": c.trained_on,
    }
    if c.failure_reason:
        view["FailureReason"] = c.failure_reason
    return view


def candidates_view(store: Store, job: str) -> dict[str, Any]:
    row = store.get_job(job)
    ranks = {name: i + 1 for i, name in enumerate(leaderboard(store, job)["candidate"])}
    metrics = store.metrics(job)
    rows = sorted(store.list_candidates(job),
                  key=lambda c: (ranks.get(c.name, len(ranks) + 1), c.number))
    return {"Candidates": [candidate_view(row, c, metrics.get(c.name, {}).get("validation", {}),
                                          ranks.get(c.name)) for c in rows]}


def _filling(given: dict[str, Any]) -> dict[str, Any]:
    """A stored Filling as Autopilot writes it: `middlefill: value, middlefill_value: 2`."""
    given = {k: v for k, v in given.items() if v is not None}
    value = given.pop("value", None)
    filling = dict(given)
    for where, method in given.items():
        if method == "value" and value is not None:
            filling[f"{where}_value"] = f"{value:g}"
    return filling


def job_config(request: dict[str, Any]) -> dict[str, Any]:
    """The TimeSeriesForecastingJobConfig that a stored ForecastRequest stands for."""
    from tabpilot.forecast.model import quantile_column

    series = {"TargetAttributeName": request["target"],
              "TimestampAttributeName": request["timestamp"]}
    if request.get("item_id"):
        series["ItemIdentifierAttributeName"] = request["item_id"]
    if request.get("grouping"):
        series["GroupingAttributeNames"] = list(request["grouping"])
    transformations: dict[str, Any] = {"Filling": {
        request["target"]: _filling(request.get("filling") or {}),
        # known-in-advance covariates: their own filling, futurefill included
        **{c: _filling((request.get("covariate_filling") or {}).get(c) or {})
           for c in request.get("covariates") or []}}}
    aggregation = {**({request["target"]: request["aggregation"]}
                      if request.get("aggregation") else {}),
                   **(request.get("covariate_aggregation") or {})}
    if aggregation:
        transformations["Aggregation"] = aggregation
    config = {
        "CompletionCriteria": {"MaxAutoMLJobRuntimeInSeconds": int(request["time_limit"])},
        "ForecastFrequency": request["frequency"],
        "ForecastHorizon": request["horizon"],
        "ForecastQuantiles": [quantile_column(q) for q in request["quantiles"]],
        "Transformations": transformations,
        "TimeSeriesConfig": series,
    }
    if request.get("holiday_country"):
        config["HolidayConfig"] = [{"CountryCode": request["holiday_country"]}]
    return config


def describe_job(store: Store, job: str) -> dict[str, Any]:
    """DescribeAutoMLJobV2's fields for a forecasting job, plus tabpilot's own."""
    from tabpilot.jobs.views import arn, check_alive, iso_time

    row = check_alive(store, store.get_job(job))
    board = leaderboard(store, job)
    best = None
    if row.best_candidate:
        c = store.get_candidate(job, row.best_candidate)
        at = board.index[board["candidate"] == c.name]
        best = candidate_view(row, c, store.metrics(job).get(c.name, {}).get("validation", {}),
                              int(board.at[at[0], "rank"]) if len(at) else None)
    job_dir = Path(row.job_dir)
    cands = store.list_candidates(job)
    stats = row.stats or {}
    backtests = job_dir / BACKTEST_RESULTS
    return {
        "AutoMLJobName": row.name,
        "AutoMLJobArn": arn("automl-job", row.name),
        "AutoMLJobInputDataConfig": [{
            "ChannelType": "training", "ContentType": "text/csv;header=present",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": row.input_uri}}}],
        "OutputDataConfig": {"S3OutputPath": str(job_dir)},
        "AutoMLJobObjective": {"MetricName": row.metric},
        "AutoMLProblemTypeConfig": {"TimeSeriesForecastingJobConfig": job_config(row.request)},
        "AutoMLProblemTypeConfigName": "TimeSeriesForecasting",
        "CreationTime": iso_time(row.created),
        "EndTime": iso_time(row.ended),
        "LastModifiedTime": iso_time(row.modified),
        "FailureReason": row.failure_reason,
        "PartialFailureReasons": [],
        "BestCandidate": best,
        "AutoMLJobStatus": row.status,
        "AutoMLJobSecondaryStatus": row.secondary_status,
        "AutoMLJobArtifacts": {"DataExplorationNotebookLocation": str(job_dir / NOTEBOOK)}
        if (job_dir / NOTEBOOK).exists() else {},
        "ResolvedAttributes": {
            "AutoMLJobObjective": {"MetricName": row.metric},
            "CompletionCriteria": {
                "MaxAutoMLJobRuntimeInSeconds": int(row.request["time_limit"])}},
        # tabpilot's own fields
        "ProblemType": "TimeSeriesForecasting",
        "Workspace": str(job_dir.parent.parent),
        "JobDirectory": str(job_dir),
        "LeaderboardLocation": str(job_dir / "leaderboard.json")
        if (job_dir / "leaderboard.json").exists() else None,
        "BacktestResultsLocation": str(backtests) if backtests.exists() else None,
        "CandidateCounts": {s: sum(1 for c in cands if c.status == s)
                            for s in ("Completed", "Failed", "Stopped", "InProgress")},
        "DataWarnings": stats.get("warnings", []),
        "Items": stats.get("items"),
        "ElapsedSeconds": stats.get("seconds"),
    }
