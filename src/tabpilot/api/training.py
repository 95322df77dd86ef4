"""Training jobs with SageMaker's built-in algorithms: CreateTrainingJob, DescribeTrainingJob,
ListTrainingJobs, StopTrainingJob, and the worker's body (`run_training`).

`AlgorithmSpecification.TrainingImage` must be a built-in image (`training/images.py`);
the request is checked on arrival (image, hyperparameters, channel names, every location
through `Locations`), stored as a `training-job` resource, and run by
`python -m tabpilot.api.worker training NAME` in `<workspace>/training-jobs/NAME/`. The
worker records SageMaker's secondary statuses as it passes them, the final metrics, and
copies `model.tar.gz` to `<S3OutputPath>/<name>/output/model.tar.gz`, where SageMaker puts
it; CreateModel maps that location back to the job's own copy (`local_artifact`).
"""

from __future__ import annotations

import logging
import socket
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tabpilot.api.context import ApiContext
from tabpilot.api.locations import join
from tabpilot.api.paging import named_page
from tabpilot.api.shapes import ApiError, validation_error
from tabpilot.diagnostics import debugger
from tabpilot.errors import ConfigError, DataError, TabpilotError
from tabpilot.jobs.arns import arn
from tabpilot.training import images
from tabpilot.training.job import ARCHIVE, ChannelInput, check

log = logging.getLogger("tabpilot.api.training")
KIND = "training-job"
FOLDER = "training-jobs"  # <workspace>/training-jobs/<name>/
ACTIVE = ("InProgress", "Stopping")
OUTPUT_FIELD = "OutputDataConfig.S3OutputPath"
DEFAULT_STOPPING = {"MaxRuntimeInSeconds": 86400}
STATUS_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Reading the input channels",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped at MaxRuntimeInSeconds",
    "Failed": "Training job failed",
}


def channel_field(i: int) -> str:
    return f"InputDataConfig.{i + 1}.member.DataSource.S3DataSource.S3Uri"


def artifact_uri(p: dict[str, Any]) -> str:
    return join(p["OutputDataConfig"]["S3OutputPath"], p["TrainingJobName"], "output", ARCHIVE)


def job_dir(ctx: ApiContext, name: str) -> Path:
    return ctx.workspace / FOLDER / name


# -- create -----------------------------------------------------------------------------
def _check_request(ctx: ApiContext, p: dict[str, Any]) -> images.BuiltinImage:
    spec = p.get("AlgorithmSpecification") or {}
    if not spec.get("TrainingImage"):
        raise validation_error("AlgorithmSpecification.TrainingImage is required: tabpilot runs "
                               "the built-in algorithms' images (AlgorithmName and algorithm "
                               "resources are not supported)")
    image = images.builtin(spec["TrainingImage"])
    if spec.get("TrainingInputMode", "File") not in ("File", "FastFile"):
        raise validation_error("TrainingInputMode Pipe is not supported; use File")
    channels = p.get("InputDataConfig") or []
    for i, channel in enumerate(channels):
        source = channel["DataSource"].get("S3DataSource")
        if source is None:
            raise validation_error(f"channel {channel['ChannelName']}: tabpilot reads "
                                   "S3DataSource channels (file systems are not supported)")
        if source["S3DataType"] != "S3Prefix":
            raise validation_error(f"channel {channel['ChannelName']}: S3DataType "
                                   f"{source['S3DataType']} is not supported; use S3Prefix")
        channel_files(ctx, source["S3Uri"], channel_field(i), channel["ChannelName"])
    check(image.algorithm, p.get("HyperParameters") or {},
          [c["ChannelName"] for c in channels], [c.get("ContentType") for c in channels])
    ctx.locations.resolve_output(p["OutputDataConfig"]["S3OutputPath"], OUTPUT_FIELD)
    try:  # Debugger's built-in rules, evaluated on the curves (diagnostics/debugger.py)
        debugger.check(p.get("DebugRuleConfigurations") or [])
    except debugger.RuleConfigError as exc:
        raise ConfigError(str(exc)) from None
    return image


def create(ctx: ApiContext, p: dict[str, Any], tuning: str | None = None,
           live: dict[str, Any] | None = None) -> dict[str, Any]:
    """CreateTrainingJob; `tuning` names the tuning job that started it (api/tuning.py),
    `live` how that job may stop it early (training/progress.py)."""
    name = p["TrainingJobName"]
    if ctx.store.find_resource(KIND, name) is not None:
        raise ApiError("ResourceInUse", f"Training job {name} already exists.")
    from tabpilot.api import experiment_jobs  # its trial component

    try:
        image = _check_request(ctx, p)
    except TabpilotError as exc:
        raise validation_error(str(exc)) from None
    experiment_jobs.check_experiment_config(ctx, p.get("ExperimentConfig"))
    now = time.time()
    spec = {"request": p, "algorithm": image.algorithm, "secondary": "Starting",
            "transitions": [_transition("Starting", now)], "published": False, "tuning": tuning,
            "live": live}
    try:
        ctx.store.add_resource(KIND, name, spec, status="InProgress")
    except TabpilotError:
        raise ApiError("ResourceInUse", f"Training job {name} already exists.") from None
    experiment_jobs.record_training_job(ctx, name, p.get("ExperimentConfig"))
    pid = ctx.launch("training", name)
    ctx.store.update_resource(KIND, name, spec={**spec, "pid": pid,
                                                "host": socket.gethostname()})
    return {"TrainingJobArn": arn(KIND, name)}


def channel_files(ctx: ApiContext, uri: str, field: str, channel: str,
                  scratch: Path | None = None) -> list[Path]:
    """The files of a channel (a file, or every file under a prefix as SageMaker copies
    them), local; a remote channel is downloaded into `scratch` when given."""
    import fsspec

    where = ctx.locations.resolve(uri, field)
    fs, path = fsspec.core.url_to_fs(where)
    if fs.isfile(path):
        found = [path]
    elif fs.exists(path):
        found = sorted(f for f in fs.find(path) if not Path(f).name.startswith((".", "_")))
    else:
        raise DataError(f"{field}: {uri} does not exist; check the S3Uri (or --s3-root)")
    if "://" not in where:
        found = [f for f in found if ctx.locations.roots.contains(f)]
    if not found or all(fs.size(f) == 0 for f in found):
        raise DataError(f"{field}: channel {channel} at {uri} holds no data")
    if "://" not in where:
        return [Path(f) for f in found]
    if scratch is None:
        return [Path(f) for f in found]
    scratch.mkdir(parents=True, exist_ok=True)
    local = []
    for i, f in enumerate(found):
        target = scratch / f"{i:05d}-{Path(f).name}"
        fs.get(f, str(target))
        local.append(target)
    return local


# -- the worker -------------------------------------------------------------------------
def _transition(status: str, now: float) -> dict[str, Any]:
    return {"Status": status, "StartTime": now, "StatusMessage": STATUS_MESSAGES.get(status, "")}


class _Progress:
    """The job's resource row as the worker moves it along."""

    def __init__(self, ctx: ApiContext, name: str) -> None:
        self.ctx, self.name = ctx, name
        self.spec = ctx.store.get_resource(KIND, name).spec
        self._checked, self._stopping = 0.0, False

    def secondary(self, status: str) -> None:
        now = time.time()
        transitions = self.spec.setdefault("transitions", [])
        if transitions and transitions[-1]["Status"] == status:
            return
        if transitions:
            transitions[-1]["EndTime"] = now
        transitions.append(_transition(status, now))
        self.spec["secondary"] = status
        if status == "Training":
            self.spec["training_started"] = now
        self.ctx.store.update_resource(KIND, self.name, spec=self.spec)

    def stop_requested(self) -> bool:
        """StopTrainingJob sets the row's status to Stopping; looked up once a second."""
        if not self._stopping and time.time() - self._checked >= 1.0:
            self._checked = time.time()
            self._stopping = self.ctx.store.get_resource(KIND, self.name).status == "Stopping"
        return self._stopping

    def finish(self, status: str, secondary: str, reason: str | None = None) -> None:
        now = time.time()
        self.secondary(secondary)
        self.spec["transitions"][-1]["EndTime"] = now
        self.spec["finished"] = now
        self.ctx.store.update_resource(KIND, self.name, spec=self.spec, status=status,
                                       failure_reason=reason, ended=now)


def run_training(ctx: ApiContext, name: str) -> None:
    from tabpilot.training import progress as early_stopping
    from tabpilot.training.base import Control
    from tabpilot.training.job import run

    progress = _Progress(ctx, name)
    p = progress.spec["request"]
    folder = job_dir(ctx, name)
    stopping = p.get("StoppingCondition") or DEFAULT_STOPPING
    try:
        progress.secondary("Downloading")
        inputs = {}
        for i, channel in enumerate(p.get("InputDataConfig") or []):
            cname = channel["ChannelName"]
            files = channel_files(ctx, channel["DataSource"]["S3DataSource"]["S3Uri"],
                                  channel_field(i), cname, folder / "input" / "data" / cname)
            inputs[cname] = ChannelInput(files, channel.get("ContentType"),
                                         channel.get("CompressionType") == "Gzip")
        control = Control(deadline=time.time() + stopping.get("MaxRuntimeInSeconds", 86400),
                          stop_requested=progress.stop_requested,
                          judge=early_stopping.judge(progress.spec.get("live")))
        result = run(folder, progress.spec["algorithm"], p.get("HyperParameters") or {},
                     inputs, control, progress.secondary)
        ctx.locations.publish(result.archive, artifact_uri(p), OUTPUT_FIELD)
        progress.spec.update(published=True, metrics=result.metrics,
                             metrics_time=time.time(), rules=debugger.evaluate(
                                 p.get("DebugRuleConfigurations") or [], result.curves,
                                 result.class_counts, result.importance))
        if result.stopped_by == "deadline":
            progress.finish("Stopped", "MaxRuntimeExceeded")
        elif result.stopped_by == "stop":
            progress.finish("Stopped", "Stopped")
        else:
            progress.finish("Completed", "Completed")
    except BaseException as exc:
        log.error("training job %s failed: %s", name, traceback.format_exc())
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        kind = "ClientError" if isinstance(exc, TabpilotError) else "AlgorithmError"
        progress.finish("Failed", "Failed", f"{kind}: {first}"[:1024])
        if not isinstance(exc, Exception):
            raise


# -- describe, list, stop ---------------------------------------------------------------
def current_row(ctx: ApiContext, name: str):
    row = ctx.store.find_resource(KIND, name)
    if row is None:
        raise validation_error(f"Requested resource not found: training job {name} "
                               "does not exist")
    if row.status in ACTIVE and _worker_gone(row.spec):
        reason = "the training worker exited unexpectedly; its log is `tabpilot logs " \
            f"{name}`"
        ctx.store.update_resource(KIND, name, status="Failed", failure_reason=reason,
                                  ended=time.time())
        row = ctx.store.find_resource(KIND, name)
    return row


def _worker_gone(spec: dict[str, Any]) -> bool:
    """A worker on this host that no longer runs (a worker elsewhere is trusted)."""
    import os

    pid = spec.get("pid")
    if not pid or spec.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie (exited, not yet reaped) is gone too
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] == "Z"
    except OSError:
        return False


def describe(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = current_row(ctx, p["TrainingJobName"])
    spec, req = row.spec, row.spec["request"]
    transitions = [dict(t) for t in spec.get("transitions", [])]
    secondary = spec.get("secondary", "Starting")
    if row.status == "Stopping":
        secondary = "Stopping"
    started = spec.get("training_started")
    end = row.ended
    seconds = int(round((end or time.time()) - started)) if started else None
    metrics = [{"MetricName": k, "Value": v, "Timestamp": spec.get("metrics_time", end)}
               for k, v in (spec.get("metrics") or {}).items()]
    algorithm = {"TrainingInputMode": "File", **req.get("AlgorithmSpecification", {})}
    return {
        **{k: req[k] for k in ("HyperParameters", "RoleArn", "InputDataConfig",
                               "OutputDataConfig", "ResourceConfig", "VpcConfig",
                               "EnableNetworkIsolation", "EnableManagedSpotTraining",
                               "CheckpointConfig", "DebugHookConfig", "ExperimentConfig",
                               "Environment", "RetryStrategy", "TensorBoardOutputConfig",
                               "ProfilerConfig", "DebugRuleConfigurations",
                               "ProfilerRuleConfigurations") if k in req},
        "TrainingJobName": row.name, "TrainingJobArn": arn(KIND, row.name),
        "TuningJobArn": arn("hyper-parameter-tuning-job", spec["tuning"])
        if spec.get("tuning") else None,
        "AlgorithmSpecification": algorithm,
        # SageMaker always answers a KmsKeyId ("" for none); the SDK's Estimator.attach reads it
        **({"OutputDataConfig": {"KmsKeyId": "", **req["OutputDataConfig"]}}
           if "OutputDataConfig" in req else {}),
        "ModelArtifacts": {"S3ModelArtifacts": artifact_uri(req)},
        "TrainingJobStatus": row.status, "SecondaryStatus": secondary,
        "FailureReason": row.failure_reason,
        "StoppingCondition": req.get("StoppingCondition") or DEFAULT_STOPPING,
        "CreationTime": row.created, "LastModifiedTime": row.modified,
        "TrainingStartTime": started, "TrainingEndTime": end if started else None,
        "SecondaryStatusTransitions": transitions,
        "FinalMetricDataList": metrics,
        "TrainingTimeInSeconds": seconds if end else None,
        "BillableTimeInSeconds": seconds if end else None,
        "DebugRuleEvaluationStatuses": _rule_statuses(row) or None,
    }


def _rule_statuses(row) -> list[dict[str, Any]]:
    """InProgress while the job trains; the rules' results once it ended with curves;
    Stopped for a job that failed before the rules could look."""
    found = {r["RuleConfigurationName"]: r for r in row.spec.get("rules") or []}
    out = []
    for config in row.spec["request"].get("DebugRuleConfigurations") or []:
        name = config["RuleConfigurationName"]
        status = found.get(name) or ({"RuleEvaluationStatus": "InProgress"}
                                     if row.status in ACTIVE else {
            "RuleEvaluationStatus": "Stopped",
            "StatusDetails": f"the training job is {row.status} without training curves"})
        out.append({**status, "RuleConfigurationName": name,
                    "RuleEvaluationJobArn": arn("processing-job", f"{row.name}-{name}"[:63]),
                    "LastModifiedTime": row.modified})
    return out


def list_jobs(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    chosen, token = named_page(ctx.store.list_resources(KIND), p)
    return {"TrainingJobSummaries": [{
        "TrainingJobName": r.name, "TrainingJobArn": arn(KIND, r.name),
        "CreationTime": r.created, "TrainingEndTime": r.ended, "LastModifiedTime": r.modified,
        "TrainingJobStatus": r.status, "SecondaryStatus": r.spec.get("secondary"),
    } for r in chosen], "NextToken": token}


def stop(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = current_row(ctx, p["TrainingJobName"])
    if row.status != "InProgress":
        raise validation_error(f"The training job {row.name} is {row.status}; only an "
                               "InProgress job can be stopped")
    ctx.store.update_resource(KIND, row.name, status="Stopping")
    return {}


def local_artifact(ctx: ApiContext, url: str) -> Path | None:
    """The workspace's own model.tar.gz of the training job that published `url` (the
    ModelArtifacts DescribeTrainingJob gives): the server wrote it, so it is trusted."""
    for row in ctx.store.list_resources(KIND):
        if row.spec.get("published") and artifact_uri(row.spec["request"]) == url.strip():
            local = job_dir(ctx, row.name) / "output" / ARCHIVE
            return local if local.is_file() else None
    return None


def list_tags(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    """A training job's tags (the SDK's `Estimator.attach`, behind `tuner.deploy()`, asks);
    ARNs name jobs in lower case, as SageMaker's do."""
    kind, _, name = p["ResourceArn"].rpartition(":")[2].partition("/")
    if kind != KIND:
        raise validation_error(f"ListTags: tabpilot lists the tags of training jobs only, not "
                               f"of {p['ResourceArn']}")
    row = ctx.store.find_resource(KIND, name) or next(
        (r for r in ctx.store.list_resources(KIND) if r.name.lower() == name.lower()), None)
    if row is None:
        raise validation_error(f"Requested resource not found: {p['ResourceArn']}")
    return {"Tags": row.spec["request"].get("Tags") or []}


OPERATIONS = {
    "CreateTrainingJob": create, "DescribeTrainingJob": describe,
    "ListTrainingJobs": list_jobs, "StopTrainingJob": stop, "ListTags": list_tags,
}


def loader(fallback: Callable[[str], object] | None) -> Callable[[str], object]:
    """The endpoint registry's model loader: a built-in algorithm's unpacked model.tar.gz
    (CreateModel marks it) as `training.inference` serves it, anything else as before
    (`fallback`, or None: the server's own loader, looked up when called)."""
    def load(model_dir: str) -> object:
        from tabpilot.serving import app as serving_app
        from tabpilot.training import inference

        if inference.is_builtin(model_dir):
            return inference.load(model_dir)
        return (fallback or serving_app.load_model_dir)(model_dir)

    return load
