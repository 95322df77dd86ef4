"""Each training job's trial component, `<job>-aws-training-job` (api/experiments.py keeps
its row): created by CreateTrainingJob's hook and associated as the job's ExperimentConfig
says (the SDK's `Run` passes one), and filled from the job whenever it is described, so
nothing has to keep the two in step.

What SageMaker reports for a training job's component, from the job: its status and times;
its hyperparameters as parameters (numbers as NumberValue) with `SageMaker.InstanceType`,
`SageMaker.InstanceCount` and `SageMaker.VolumeSizeInGB`; each channel and
`SageMaker.ImageUri` as input artifacts; `SageMaker.ModelArtifact` once the model is
published; and each built-in metric's summary over the training iterations (metrics.json's
curves), whose Last is the job's final value.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

from tabpilot.api import training
from tabpilot.api.context import ApiContext
from tabpilot.api.experiments import (
    COMPONENT,
    EXPERIMENT,
    JOB_SUFFIX,
    LOCK,
    TRIAL,
    find,
    get,
    key,
)
from tabpilot.api.shapes import ApiError, validation_error
from tabpilot.experiments import series as metric_series
from tabpilot.jobs.arns import arn

log = logging.getLogger("tabpilot.api.experiments")


def check_experiment_config(ctx: ApiContext, config: dict[str, Any] | None) -> None:
    """CreateTrainingJob's ExperimentConfig, checked before the job is stored: the
    experiment and the trial it names must exist, and the trial be the experiment's."""
    if not config:
        return
    experiment = get(ctx, EXPERIMENT, config["ExperimentName"]) \
        if config.get("ExperimentName") else None
    if config.get("TrialName"):
        trial = get(ctx, TRIAL, config["TrialName"])
        if experiment is not None and trial.spec["experiment"] != experiment.name:
            raise validation_error(f"ExperimentConfig: trial '{trial.spec['name']}' belongs to "
                                   f"experiment '{trial.spec['ExperimentName']}', not "
                                   f"'{experiment.spec['name']}'")


def record_training_job(ctx: ApiContext, job: str, config: dict[str, Any] | None) -> None:
    """The job's trial component, associated as its ExperimentConfig says (a new trial
    `<job>-aws-training-job` when only the experiment is named)."""
    name = job + JOB_SUFFIX
    config = config or {}
    with LOCK:
        trial = config.get("TrialName")
        if not trial and config.get("ExperimentName"):
            trial = name
            if find(ctx, TRIAL, trial) is None:
                experiment = get(ctx, EXPERIMENT, config["ExperimentName"])
                ctx.store.add_resource(TRIAL, key(trial), {
                    "name": trial, "experiment": experiment.name,
                    "ExperimentName": experiment.spec["name"]})
        spec = {"name": name, "training_job": job, "trials": [key(trial)] if trial else [],
                **({"DisplayName": config["TrialComponentDisplayName"]}
                   if config.get("TrialComponentDisplayName") else {}),
                **({"RunName": config["RunName"]} if config.get("RunName") else {})}
        if find(ctx, COMPONENT, name) is None:
            ctx.store.add_resource(COMPONENT, key(name), spec)
        else:  # a component left from an earlier job of this name
            ctx.store.update_resource(COMPONENT, key(name), spec=spec)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def fill(ctx: ApiContext, out: dict[str, Any], job: str) -> dict | None:
    """Fill a training job's component record `out` from the job; the job's
    DescribeTrainingJob answer, or None when the job is gone."""
    try:
        described = training.describe(ctx, {"TrainingJobName": job})
    except ApiError:
        return None
    req = ctx.store.get_resource(training.KIND, job).spec["request"]
    out["Status"] = {"PrimaryStatus": described["TrainingJobStatus"],
                     "Message": described.get("FailureReason")
                     or training.STATUS_MESSAGES.get(described["SecondaryStatus"], "")}
    out["StartTime"] = described.get("TrainingStartTime") or described["CreationTime"]
    out["EndTime"] = described.get("TrainingEndTime")
    for name, text in (req.get("HyperParameters") or {}).items():
        value = _number(text)
        out["Parameters"][name] = {"NumberValue": value} if value is not None \
            else {"StringValue": text}
    resources = req.get("ResourceConfig") or {}
    out["Parameters"]["SageMaker.InstanceType"] = {"StringValue": resources.get(
        "InstanceType", "ml.m5.xlarge")}
    for field in ("InstanceCount", "VolumeSizeInGB"):
        if field in resources:
            out["Parameters"][f"SageMaker.{field}"] = {"NumberValue": resources[field]}
    out["InputArtifacts"]["SageMaker.ImageUri"] = {
        "Value": req["AlgorithmSpecification"]["TrainingImage"]}
    for channel in req.get("InputDataConfig") or []:
        artifact = {"Value": channel["DataSource"]["S3DataSource"]["S3Uri"]}
        if channel.get("ContentType"):
            artifact["MediaType"] = channel["ContentType"].split(";")[0].strip()
        out["InputArtifacts"][channel["ChannelName"]] = artifact
    if described["TrainingJobStatus"] in ("Completed", "Stopped") \
            and ctx.store.get_resource(training.KIND, job).spec.get("published"):
        out["OutputArtifacts"]["SageMaker.ModelArtifact"] = {
            "Value": described["ModelArtifacts"]["S3ModelArtifacts"]}
    out["Metrics"] = _job_metrics(ctx, job, described)
    return described


def curves(ctx: ApiContext, job: str) -> dict[str, list[float]]:
    """The job's per-iteration metrics (metrics.json, written when it ends); {} before."""
    path = training.job_dir(ctx, job) / "metrics.json"
    if not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text()).get("curves") or {}
    except (OSError, ValueError):
        log.warning("unreadable %s; the component's metrics are the final values", path)
        return {}
    return {name: [float(v) for v in values if math.isfinite(float(v))]
            for name, values in found.items()}


def _job_metrics(ctx: ApiContext, job: str, described: dict[str, Any]) -> list[dict]:
    """Each metric's summary over the job's iterations; Last is the final value
    DescribeTrainingJob reports."""
    final = {m["MetricName"]: m for m in described.get("FinalMetricDataList", [])}
    by_name = curves(ctx, job) if final else {}
    source = arn("training-job", job)
    out = []
    for name in sorted(set(final) | set(by_name)):
        values = list(by_name.get(name, []))
        stamp = final[name]["Timestamp"] if name in final else described.get("TrainingEndTime")
        if name in final and not values:
            values = [float(final[name]["Value"])]
        if not values:
            continue
        summary = metric_series.summary(metric_series.from_values(values, stamp))
        if name in final:
            summary["Last"] = float(final[name]["Value"])
        out.append({"MetricName": name, "SourceArn": source, **summary,
                    "TimeStamp": stamp or time.time()})
    return out
