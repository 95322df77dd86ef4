"""Hyperparameter tuning jobs over the built-in algorithms' training jobs:
CreateHyperParameterTuningJob, DescribeHyperParameterTuningJob, ListHyperParameterTuningJobs,
StopHyperParameterTuningJob, ListTrainingJobsForHyperParameterTuningJob.

The request is checked on arrival (image, ranges against the algorithm's hyperparameters,
both ends of every numeric range as a training job would check them, the objective's
form, the strategy), stored as a `tuning-job` resource and run by
`python -m tabpilot.api.worker tuning NAME`: it asks `training/tuning.py`'s search for
hyperparameters, creates each training job through CreateTrainingJob's own code (named
`<tuning job>-<NNN>-<8 hex>`, as SageMaker names them), keeps at most
MaxParallelTrainingJobs running, and tells the search each job's objective metric (its
FinalMetricDataList value). Stop stops the running training jobs and ends Stopped.

Early stopping (Hyperband, TrainingJobEarlyStoppingType Auto) is decided inside each
training job at every round, on the study the worker keeps in
`<workspace>/tuning-jobs/NAME/study.journal` (`training/progress.py`). A warm start
(`api/warm_start.py`) tells the study its parents' training jobs before it asks.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from tabpilot.api import training, warm_start
from tabpilot.api.context import ApiContext
from tabpilot.api.paging import named_page, page
from tabpilot.api.shapes import ApiError, validation_error
from tabpilot.errors import ConfigError, TabpilotError
from tabpilot.jobs.arns import arn
from tabpilot.training import images
from tabpilot.training.job import algorithm_module, check
from tabpilot.training.tuning import Search, Stopping, parse_ranges, stopping

log = logging.getLogger("tabpilot.api.tuning")
KIND = "tuning-job"
ARN_KIND = "hyper-parameter-tuning-job"
FOLDER = "tuning-jobs"  # <workspace>/tuning-jobs/<name>/study.journal
POLL_SECONDS = 0.5
# the hyperparameter Hyperband's resource counts (rounds, epochs), per algorithm
RESOURCE = {"xgboost": "num_round", "linear-learner": "epochs", "kmeans": "epochs"}
MAX_RESOURCE = 20000  # SageMaker's ceiling for HyperbandStrategyConfig.MaxResource


# -- the request ------------------------------------------------------------------------
def _definition(p: dict[str, Any]) -> dict[str, Any]:
    if p.get("TrainingJobDefinition"):
        return p["TrainingJobDefinition"]
    definitions = p.get("TrainingJobDefinitions") or []
    if len(definitions) != 1:
        raise validation_error("give one TrainingJobDefinition (tabpilot tunes one algorithm "
                               "per tuning job)")
    return definitions[0]


def _objective(p: dict[str, Any]) -> dict[str, str]:
    objective = p["HyperParameterTuningJobConfig"].get("HyperParameterTuningJobObjective") \
        or _definition(p).get("TuningObjective")
    if not objective:
        raise validation_error("HyperParameterTuningJobConfig.HyperParameterTuningJobObjective "
                               "is required: Type Maximize or Minimize and a MetricName such "
                               "as validation:auc")
    if ":" not in objective["MetricName"]:
        raise validation_error(f"objective metric {objective['MetricName']!r}: name a built-in "
                               "metric as <channel>:<metric>, e.g. validation:auc")
    return objective


def _ranges(p: dict[str, Any], algorithm: str):
    given = p["HyperParameterTuningJobConfig"].get("ParameterRanges") \
        or _definition(p).get("HyperParameterRanges") or {}
    return parse_ranges(given, algorithm_module(algorithm).HYPERPARAMETERS, algorithm)


def _stopping(p: dict[str, Any], algorithm: str) -> Stopping:
    config = p["HyperParameterTuningJobConfig"]
    name = RESOURCE.get(algorithm)
    static = _definition(p).get("StaticHyperParameters", {})
    resource = None if name is None else (name, int(static[name]) if static.get(name, "")
                                          .isdigit() else None)
    hyperband = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig")
    early = stopping(config["Strategy"], config.get("TrainingJobEarlyStoppingType"),
                     hyperband, resource)
    if early.high > MAX_RESOURCE:
        raise ConfigError(f"HyperbandStrategyConfig.MaxResource is at most {MAX_RESOURCE}; "
                          f"got {early.high}")
    return early


def _search(p: dict[str, Any], algorithm: str, journal: Path | None = None,
            name: str = "tuning") -> Search:
    config = p["HyperParameterTuningJobConfig"]
    return Search(config["Strategy"], _ranges(p, algorithm),
                  _objective(p)["Type"] == "Maximize", config.get("RandomSeed"),
                  _stopping(p, algorithm), journal, name)


def _max_jobs(p: dict[str, Any], search: Search) -> int:
    given = p["HyperParameterTuningJobConfig"]["ResourceLimits"].get("MaxNumberOfTrainingJobs")
    if given is None and search.size is None:
        raise validation_error("ResourceLimits.MaxNumberOfTrainingJobs is required (tabpilot "
                               "has no other completion criteria yet)")
    return min(x for x in (given, search.size) if x is not None)


def _resource_config(tuning: dict[str, Any]) -> dict[str, Any]:
    """A training job's ResourceConfig from a definition's HyperParameterTuningResourceConfig
    (what the SDK's HyperparameterTuner sends): its first InstanceConfigs entry, else its own
    instance type, count and volume, as SageMaker describes the tuner's training jobs (the
    SDK's `Estimator.attach`, behind `tuner.deploy()`, reads them back)."""
    first = (tuning.get("InstanceConfigs") or [{}])[0]
    return {k: first.get(k, tuning.get(k)) for k in ("InstanceType", "InstanceCount",
                                                     "VolumeSizeInGB", "VolumeKmsKeyId")
            if first.get(k, tuning.get(k)) is not None}


def _child_request(p: dict[str, Any], child: str, tuned: dict[str, str],
                   early: Stopping | None = None, algorithm: str = "") -> dict[str, Any]:
    d = _definition(p)
    request = {k: d[k] for k in ("AlgorithmSpecification", "RoleArn", "InputDataConfig",
                                 "OutputDataConfig", "ResourceConfig", "StoppingCondition",
                                 "VpcConfig", "EnableNetworkIsolation", "Environment",
                                 "CheckpointConfig", "RetryStrategy") if k in d}
    request["AlgorithmSpecification"] = {
        k: v for k, v in request["AlgorithmSpecification"].items() if k != "MetricDefinitions"}
    if "ResourceConfig" not in request and d.get("HyperParameterTuningResourceConfig"):
        request["ResourceConfig"] = _resource_config(d["HyperParameterTuningResourceConfig"])
    request["TrainingJobName"] = child
    request["HyperParameters"] = {**d.get("StaticHyperParameters", {}), **tuned}
    if early is not None and early.kind == "hyperband":  # it trains up to MaxResource
        request["HyperParameters"][RESOURCE[algorithm]] = str(early.high)
    return request


def create(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["HyperParameterTuningJobName"]
    if ctx.store.find_resource(KIND, name) is not None:
        raise ApiError("ResourceInUse", f"Tuning job {name} already exists.")
    d = _definition(p)
    try:
        image = images.builtin(d["AlgorithmSpecification"].get("TrainingImage") or "",
                               "TrainingJobDefinition.AlgorithmSpecification.TrainingImage")
        search = _search(p, image.algorithm)
        _max_jobs(p, search)
        static = d.get("StaticHyperParameters", {})
        if search.early.kind == "hyperband" and RESOURCE[image.algorithm] in \
                [r.name for r in search.ranges]:
            raise ConfigError(f"Strategy Hyperband sets {RESOURCE[image.algorithm]} itself "
                              "(up to MaxResource); do not tune it")
        both = [r.name for r in search.ranges if r.name in static]
        if both:
            raise ConfigError(f"{both[0]} is both a static and a tuned hyperparameter")
        static = _child_request(p, "check", {}, search.early, image.algorithm)[
            "HyperParameters"]
        for corner in ("low", "high"):  # both ends of every range, as a job would check them
            tuned = {r.name: r.values[0] if r.kind == "categorical" else
                     str(int(getattr(r, corner))) if r.kind == "int" else
                     repr(getattr(r, corner)) for r in search.ranges}
            check(image.algorithm, {**static, **tuned},
                  [c["ChannelName"] for c in d.get("InputDataConfig", [])],
                  [c.get("ContentType") for c in d.get("InputDataConfig", [])])
        warm_start.check(ctx, p, image)
    except TabpilotError as exc:
        raise validation_error(str(exc)) from None
    ctx.store.add_resource(KIND, name, {"request": p, "algorithm": image.algorithm,
                                        "children": []}, status="InProgress")
    ctx.launch("tuning", name)
    return {"HyperParameterTuningJobArn": arn(ARN_KIND, name)}


# -- the worker -------------------------------------------------------------------------
def journal(ctx: ApiContext, name: str) -> Path:
    return ctx.workspace / FOLDER / name / "study.journal"


def run_tuning(ctx: ApiContext, name: str) -> None:
    store = ctx.store
    spec = store.get_resource(KIND, name).spec
    p = spec["request"]
    limits = p["HyperParameterTuningJobConfig"]["ResourceLimits"]
    deadline = time.time() + limits.get("MaxRuntimeInSeconds", 10 * 86400)
    try:
        path = journal(ctx, name)
        if path.exists():  # a worker started again: a fresh study, not a second one in it
            path.unlink()
        search = _search(p, spec["algorithm"], path, name)
        if p.get("WarmStartConfig"):
            told = search.warm(warm_start.parent_results(ctx, p))
            log.info("tuning job %s: told the study %d training jobs of its parents", name,
                     told)
        stopping = _run_children(ctx, name, spec, search, deadline)
        status = "Stopped" if stopping else "Completed"
        reason = None
        if not stopping and _best(ctx, spec, p) is None:
            status, reason = "Failed", "no training job reported the objective metric " \
                f"{_objective(p)['MetricName']}"
        store.update_resource(KIND, name, status=status, failure_reason=reason, ended=time.time())
    except BaseException as exc:
        log.error("tuning job %s failed: %s", name, traceback.format_exc())
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        store.update_resource(KIND, name, status="Failed", failure_reason=first[:1024],
                              ended=time.time())
        if not isinstance(exc, Exception):
            raise


def _run_children(ctx: ApiContext, name: str, spec: dict[str, Any], search: Search,
                  deadline: float) -> bool:
    """Start, watch and tell the training jobs, at most MaxParallelTrainingJobs at a time;
    True when the tuning job was stopped (Stop or MaxRuntimeInSeconds)."""
    store, p = ctx.store, spec["request"]
    metric = _objective(p)["MetricName"]
    limits = p["HyperParameterTuningJobConfig"]["ResourceLimits"]
    total, parallel = _max_jobs(p, search), limits["MaxParallelTrainingJobs"]
    running: dict[int, str] = {}
    stopping = False
    while len(spec["children"]) < total or running:
        if not stopping and (store.get_resource(KIND, name).status == "Stopping"
                             or time.time() > deadline):
            stopping = True
            for child in running.values():
                row = store.find_resource(training.KIND, child)
                if row is not None and row.status == "InProgress":
                    store.update_resource(training.KIND, child, status="Stopping")
        while not stopping and len(running) < parallel and len(spec["children"]) < total:
            number, tuned = search.ask()
            child = f"{name}-{number + 1:03d}-{uuid.uuid4().hex[:8]}"
            training.create(ctx, _child_request(p, child, tuned, search.early,
                                                spec["algorithm"]),
                            tuning=name, live=search.live(number, metric))
            spec["children"].append({"name": child, "tuned": tuned})
            store.update_resource(KIND, name, spec=spec)
            running[number] = child
            log.info("tuning job %s started %s with %s", name, child, tuned)
        for number, child in list(running.items()):
            row = training.current_row(ctx, child)
            if row.status in training.ACTIVE:
                continue
            value = (row.spec.get("metrics") or {}).get(metric)
            search.tell(number, value if row.status in ("Completed", "Stopped") else None,
                        stopped_early=row.status == "Stopped")
            del running[number]
            log.info("tuning job %s: %s %s, %s = %s", name, child, row.status, metric, value)
        if stopping and not running:
            break
        time.sleep(POLL_SECONDS)
    return stopping


# -- describe, list, stop ---------------------------------------------------------------
def _get(ctx: ApiContext, name: str):
    row = ctx.store.find_resource(KIND, name)
    if row is None:
        raise ApiError("ResourceNotFound", f"Amazon SageMaker can't find a tuning job named "
                       f"{name}.")
    return row


def _summaries(ctx: ApiContext, spec: dict[str, Any], p: dict[str, Any]) -> list[dict]:
    objective = _objective(p)
    out = []
    for child in spec.get("children", []):
        row = ctx.store.find_resource(training.KIND, child["name"])
        if row is None:
            continue
        value = (row.spec.get("metrics") or {}).get(objective["MetricName"])
        summary: dict[str, Any] = {
            "TrainingJobName": row.name, "TrainingJobArn": arn(training.KIND, row.name),
            "TuningJobName": row.spec.get("tuning"), "CreationTime": row.created,
            "TrainingStartTime": row.spec.get("training_started"),
            "TrainingEndTime": row.ended, "TrainingJobStatus": row.status,
            "TunedHyperParameters": child["tuned"], "FailureReason": row.failure_reason,
            "ObjectiveStatus": "Succeeded" if value is not None else
            "Pending" if row.status in training.ACTIVE else "Failed"}
        if value is not None:
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": objective["Type"], "MetricName": objective["MetricName"],
                "Value": value}
        out.append(summary)
    return out


def _best(ctx: ApiContext, spec: dict[str, Any], p: dict[str, Any]) -> dict | None:
    scored = [s for s in _summaries(ctx, spec, p)
              if "FinalHyperParameterTuningJobObjectiveMetric" in s]
    if not scored:
        return None
    sign = 1 if _objective(p)["Type"] == "Maximize" else -1
    return max(scored, key=lambda s: sign * s["FinalHyperParameterTuningJobObjectiveMetric"]
               ["Value"])


def _counters(summaries: list[dict]) -> tuple[dict[str, int], dict[str, int]]:
    status = [s["TrainingJobStatus"] for s in summaries]
    objective = [s["ObjectiveStatus"] for s in summaries]
    return ({"Completed": status.count("Completed"),
             "InProgress": sum(s in training.ACTIVE for s in status),
             "RetryableError": 0, "NonRetryableError": status.count("Failed"),
             "Stopped": status.count("Stopped")},
            {k: objective.count(k) for k in ("Succeeded", "Pending", "Failed")})


def describe(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _get(ctx, p["HyperParameterTuningJobName"])
    req = row.spec["request"]
    summaries = _summaries(ctx, row.spec, req)
    jobs, objectives = _counters(summaries)
    best = _best(ctx, row.spec, req)
    runtime = int((row.ended or time.time()) - row.created)
    return {
        **{k: req[k] for k in ("HyperParameterTuningJobConfig", "TrainingJobDefinition",
                               "TrainingJobDefinitions", "WarmStartConfig") if k in req},
        "HyperParameterTuningJobName": row.name,
        "HyperParameterTuningJobArn": arn(ARN_KIND, row.name),
        "HyperParameterTuningJobStatus": row.status, "FailureReason": row.failure_reason,
        "CreationTime": row.created, "LastModifiedTime": row.modified,
        "HyperParameterTuningEndTime": row.ended,
        "TrainingJobStatusCounters": jobs, "ObjectiveStatusCounters": objectives,
        "BestTrainingJob": best, "OverallBestTrainingJob": warm_start.overall_best(
            ctx, req, best, lambda r: _best(ctx, r.spec, r.spec["request"])),
        "ConsumedResources": {"RuntimeInSeconds": runtime},
    }


def list_jobs(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    chosen, token = named_page(ctx.store.list_resources(KIND), p)
    out = []
    for r in chosen:
        jobs, objectives = _counters(_summaries(ctx, r.spec, r.spec["request"]))
        config = r.spec["request"]["HyperParameterTuningJobConfig"]
        out.append({"HyperParameterTuningJobName": r.name,
                    "HyperParameterTuningJobArn": arn(ARN_KIND, r.name),
                    "HyperParameterTuningJobStatus": r.status, "Strategy": config["Strategy"],
                    "CreationTime": r.created, "HyperParameterTuningEndTime": r.ended,
                    "LastModifiedTime": r.modified, "TrainingJobStatusCounters": jobs,
                    "ObjectiveStatusCounters": objectives,
                    "ResourceLimits": config["ResourceLimits"]})
    return {"HyperParameterTuningJobSummaries": out, "NextToken": token}


def list_training_jobs(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _get(ctx, p["HyperParameterTuningJobName"])
    summaries = [s for s in _summaries(ctx, row.spec, row.spec["request"])
                 if p.get("StatusEquals") in (None, s["TrainingJobStatus"])]
    if p.get("SortBy") == "FinalObjectiveMetricValue":  # as SageMaker: the scored ones only
        summaries = [s for s in summaries
                     if "FinalHyperParameterTuningJobObjectiveMetric" in s]

    def objective(s: dict) -> float | None:
        metric = s.get("FinalHyperParameterTuningJobObjectiveMetric")
        return None if metric is None else metric["Value"]

    chosen, token = page(summaries, p, {
        "Name": lambda s: s["TrainingJobName"], "CreationTime": lambda s: s["CreationTime"],
        "Status": lambda s: s["TrainingJobStatus"], "FinalObjectiveMetricValue": objective},
        "Name", "Ascending")  # SageMaker's defaults
    return {"TrainingJobSummaries": chosen, "NextToken": token}


def stop(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _get(ctx, p["HyperParameterTuningJobName"])
    if row.status != "InProgress":
        raise validation_error(f"The tuning job {row.name} is {row.status}; only an InProgress "
                               "job can be stopped")
    ctx.store.update_resource(KIND, row.name, status="Stopping")
    return {}


OPERATIONS = {
    "CreateHyperParameterTuningJob": create, "DescribeHyperParameterTuningJob": describe,
    "ListHyperParameterTuningJobs": list_jobs, "StopHyperParameterTuningJob": stop,
    "ListTrainingJobsForHyperParameterTuningJob": list_training_jobs,
}
