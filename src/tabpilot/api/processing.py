"""Processing jobs: CreateProcessingJob, DescribeProcessingJob, ListProcessingJobs,
StopProcessingJob, and the worker's body (`run_processing`).

A request is checked on arrival (image kind, inputs, outputs, every location through
`Locations`), stored as a `processing-job` resource and run by
`python -m tabpilot.api.worker processing NAME` in `<workspace>/processing-jobs/NAME/`
(the container's `/opt/ml` is that folder's `opt/ml`, processing/container.py). The worker
copies the S3Inputs in, runs the analyzer or the script, and copies each output folder to
its S3Output when the job completes; the script's stdout and stderr are the job's log,
`<workspace>/logs/processing-NAME.log` (`tabpilot logs NAME`).

A script processor runs the caller's code as the server's user, so CreateProcessingJob of
a script is admitted only for an authenticated caller (`admit`, called by api/app.py
with what the guard verified): a request carrying the server's token or a valid SigV4
signature, or, on a server started with `--allow-processing-scripts`, an unauthenticated
request whose Host is a loopback name (one user's own machine). The analyzer image runs
tabpilot's own code and is admitted like any other operation.

DescribeProcessingJob also answers for a monitoring schedule's executions (their
ProcessingJobArn names them), since the SageMaker SDK reads an execution's output
location from there.
"""

from __future__ import annotations

import logging
import shutil
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from tabpilot.api.context import ApiContext
from tabpilot.api.locations import join
from tabpilot.api.monitoring import EXECUTION
from tabpilot.api.paging import named_page
from tabpilot.api.shapes import ApiError, validation_error
from tabpilot.errors import DataError, TabpilotError
from tabpilot.jobs.arns import arn
from tabpilot.processing import PROCESSING_ROOT, images
from tabpilot.processing.container import ContainerPaths, check_local

log = logging.getLogger("tabpilot.api.processing")
KIND = "processing-job"
FOLDER = "processing-jobs"  # <workspace>/processing-jobs/<name>/
ACTIVE = ("InProgress", "Stopping")
DEFAULT_STOPPING = {"MaxRuntimeInSeconds": 86400}
CODE_FOLDERS = ("/input/code", "/input/entrypoint")  # where the SDK puts scripts


def input_field(i: int) -> str:
    return f"ProcessingInputs.{i + 1}.member.S3Input.S3Uri"


def output_field(i: int) -> str:
    return f"ProcessingOutputConfig.Outputs.{i + 1}.member.S3Output.S3Uri"


def job_dir(ctx: ApiContext, name: str) -> Path:
    return ctx.workspace / FOLDER / name


def log_path(ctx: ApiContext, name: str) -> Path:
    return ctx.workspace / "logs" / f"processing-{name}.log"


# -- who may run a script ---------------------------------------------------------------
def admit(params: Any, verified: bool, loopback_host: bool, allow_open: bool) -> None:
    """Refuse CreateProcessingJob of a script unless the caller is authenticated
    (`verified`: the token or a SigV4 signature was checked), or the server allows
    unauthenticated scripts (`allow_open`) and the request came to a loopback name."""
    if verified or (allow_open and loopback_host) or not isinstance(params, dict):
        return
    app = params.get("AppSpecification") or {}
    if not isinstance(app, dict) or images.repository(str(app.get("ImageUri", ""))) \
            in images.ANALYZER_REPOSITORIES:
        return
    raise ApiError("AccessDeniedException", (
        "a processing script runs code on the server, so it needs an authenticated caller: "
        "start `tabpilot serve` with --token or --aws-access-key-id/--aws-secret-access-key "
        "and sign the request (the SageMaker SDK does), or, on a single-user machine, with "
        "--allow-processing-scripts and call it on a loopback address"), 403)


# -- create -----------------------------------------------------------------------------
def _s3_input(ctx: ApiContext, i: int, item: dict[str, Any]) -> None:
    source = item.get("S3Input")
    name = item["InputName"]
    if source is None:
        raise validation_error(f"ProcessingInputs {name}: tabpilot reads S3Input inputs "
                               "(DatasetDefinition, Athena and Redshift, is not supported)")
    if source["S3DataType"] != "S3Prefix":
        raise validation_error(f"ProcessingInputs {name}: S3DataType {source['S3DataType']} "
                               "is not supported; use S3Prefix")
    if source.get("S3InputMode", "File") != "File":
        raise validation_error(f"ProcessingInputs {name}: S3InputMode Pipe is not supported; "
                               "use File")
    check_local(_input_local(item), f"ProcessingInputs {name}: S3Input.LocalPath")
    where = ctx.locations.resolve(source["S3Uri"], input_field(i))
    if "://" not in where and not Path(where).exists():
        raise DataError(f"{input_field(i)}: {source['S3Uri']} does not exist; upload it "
                        "first (or check --s3-root)")


def _input_local(item: dict[str, Any]) -> str:
    return item["S3Input"].get("LocalPath") or f"{PROCESSING_ROOT}/input/{item['InputName']}"


def _outputs(p: dict[str, Any]) -> list[dict[str, Any]]:
    return (p.get("ProcessingOutputConfig") or {}).get("Outputs") or []


def _check_request(ctx: ApiContext, p: dict[str, Any]) -> str:
    app = p["AppSpecification"]
    kind = images.kind(app["ImageUri"], app.get("ContainerEntrypoint"))
    for i, item in enumerate(p.get("ProcessingInputs") or []):
        _s3_input(ctx, i, item)
    for i, item in enumerate(_outputs(p)):
        target = item.get("S3Output")
        if target is None:
            raise validation_error(f"ProcessingOutputConfig {item['OutputName']}: tabpilot "
                                   "writes S3Output outputs (FeatureStoreOutput is not "
                                   "supported)")
        check_local(target.get("LocalPath") or "",
                    f"ProcessingOutputConfig {item['OutputName']}: S3Output.LocalPath")
        ctx.locations.resolve_output(target["S3Uri"], output_field(i))
    if kind == images.ANALYZER:
        from tabpilot.processing.analyzer import check

        check(p.get("Environment") or {})
    return kind


def create(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["ProcessingJobName"]
    if ctx.store.find_resource(KIND, name) is not None:
        raise ApiError("ResourceInUse", f"Processing job {name} already exists.")
    try:
        kind = _check_request(ctx, p)
    except TabpilotError as exc:
        raise validation_error(str(exc)) from None
    spec = {"request": p, "kind": kind}
    try:
        ctx.store.add_resource(KIND, name, spec, status="InProgress")
    except TabpilotError:
        raise ApiError("ResourceInUse", f"Processing job {name} already exists.") from None
    pid = ctx.launch("processing", name)
    ctx.store.update_resource(KIND, name, spec={**spec, "pid": pid,
                                                "host": socket.gethostname()})
    return {"ProcessingJobArn": arn(KIND, name)}


# -- the worker -------------------------------------------------------------------------
class _Stop:
    """StopProcessingJob sets the row's status to Stopping; looked up once a second."""

    def __init__(self, ctx: ApiContext, name: str) -> None:
        self.ctx, self.name, self._checked, self._asked = ctx, name, 0.0, False

    def __call__(self) -> bool:
        if not self._asked and time.time() - self._checked >= 1.0:
            self._checked = time.time()
            self._asked = self.ctx.store.get_resource(KIND, self.name).status == "Stopping"
        return self._asked


def run_processing(ctx: ApiContext, name: str) -> None:
    """`python -m tabpilot.api.worker processing NAME`: the job, start to end."""
    store = ctx.store
    spec = store.get_resource(KIND, name).spec
    p = spec["request"]
    spec["started"] = time.time()
    store.update_resource(KIND, name, spec=spec)
    folder = job_dir(ctx, name)
    status, reason, message = "Completed", None, None
    try:
        if folder.exists():
            shutil.rmtree(folder)
        paths = ContainerPaths(folder)
        paths.write_config(p)
        _copy_inputs(ctx, p, paths)
        for item in _outputs(p):
            paths.local(item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        if spec["kind"] == images.ANALYZER:
            from tabpilot.processing.analyzer import analyze

            analyze(p.get("Environment") or {}, paths.local)
        else:
            status, reason, message = _run_script(ctx, name, p, paths)
        if status == "Completed":
            _copy_outputs(ctx, p, paths)
    except BaseException as exc:
        log.error("processing job %s failed: %s", name, traceback.format_exc())
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        kind = "ClientError" if isinstance(exc, TabpilotError) else "InternalServerError"
        status, reason = "Failed", f"{kind}: {first}"[:1024]
        if not isinstance(exc, Exception):
            _finish(ctx, name, status, reason, message)
            raise
    _finish(ctx, name, status, reason, message)


def _finish(ctx: ApiContext, name: str, status: str, reason: str | None,
            message: str | None) -> None:
    spec = ctx.store.get_resource(KIND, name).spec
    spec["exit_message"] = message
    ctx.store.update_resource(KIND, name, spec=spec, status=status, failure_reason=reason,
                              ended=time.time())


def _copy_inputs(ctx: ApiContext, p: dict[str, Any], paths: ContainerPaths) -> None:
    """Every S3Input into its LocalPath: a file as itself, a prefix's files by their
    names under the prefix (SageMaker's S3Prefix copy)."""
    import fsspec

    for i, item in enumerate(p.get("ProcessingInputs") or []):
        target = paths.local(_input_local(item))
        target.mkdir(parents=True, exist_ok=True)
        uri = item["S3Input"]["S3Uri"]
        where = ctx.locations.resolve(uri, input_field(i))
        fs, path = fsspec.core.url_to_fs(where)
        if fs.isfile(path):
            found = [(path, Path(path).name)]
        elif fs.exists(path):
            base = path.rstrip("/")
            found = [(f, f[len(base):].lstrip("/")) for f in sorted(fs.find(path))]
        else:
            raise DataError(f"{input_field(i)}: {uri} does not exist")
        if "://" not in where:  # a symlink under a local prefix may lead out of the roots
            found = [(f, rel) for f, rel in found if ctx.locations.roots.contains(f)]
        for source, rel in found:
            local = target / rel
            local.parent.mkdir(parents=True, exist_ok=True)
            fs.get(source, str(local))
        log.info("input %s: %d file(s) from %s into %s", item["InputName"], len(found), uri,
                 item["S3Input"].get("LocalPath"))
        if any(_input_local(item).endswith(c) for c in CODE_FOLDERS):
            for changed in paths.rewrite_code(target):
                log.info("mapped the /opt/ml paths in %s to %s", changed.name, paths.root)


def _copy_outputs(ctx: ApiContext, p: dict[str, Any], paths: ContainerPaths) -> None:
    """Each output folder's files to `<S3Uri>/<path in the folder>`, file by file (a
    folder put onto an existing prefix would nest under its own name)."""
    for i, item in enumerate(_outputs(p)):
        local = paths.local(item["S3Output"]["LocalPath"])
        files = sorted(f for f in local.rglob("*") if f.is_file())
        for f in files:
            ctx.locations.publish(f, join(item["S3Output"]["S3Uri"],
                                          f.relative_to(local).as_posix()), output_field(i))
        log.info("output %s: %d file(s) to %s", item["OutputName"], len(files),
                 item["S3Output"]["S3Uri"])


def _run_script(ctx: ApiContext, name: str, p: dict[str, Any], paths: ContainerPaths
                ) -> tuple[str, str | None, str | None]:
    """(status, failure reason, exit message) of the request's script."""
    import sys

    from tabpilot.processing import script

    app = p["AppSpecification"]
    words = [*app["ContainerEntrypoint"], *(app.get("ContainerArguments") or [])]
    command = [images.program(words[0]), *(paths.rewrite(w) for w in words[1:])]
    command[0] = paths.rewrite(command[0])
    env = script.environment(paths.root.parent.parent / "bin", sys.executable,
                             {**(p.get("Environment") or {}),
                              "TABPILOT_CONTAINER_ROOT": str(paths.root)})
    limit = (p.get("StoppingCondition") or DEFAULT_STOPPING)["MaxRuntimeInSeconds"]
    work = paths.local(PROCESSING_ROOT)
    log.info("running %s (tabpilot's Python %s, not the image's), at most %d s",
             " ".join(words), sys.executable, limit)
    outcome = script.run(command, work, env, log_path(ctx, name), time.time() + limit,
                         _Stop(ctx, name))
    message = "\n".join(outcome.stderr_tail)[-1024:] or None
    if outcome.stopped_by == "stop":
        return "Stopped", None, message
    if outcome.stopped_by == "deadline":
        return "Failed", f"MaxRuntimeExceeded: the script ran past MaxRuntimeInSeconds " \
                         f"({limit} s) and was ended", message
    if outcome.exit_code != 0:
        last = outcome.last_error or f"exit code {outcome.exit_code}"
        return "Failed", f"AlgorithmError: {last}"[:1024], message
    return "Completed", None, message


# -- describe, list, stop ---------------------------------------------------------------
def current_row(ctx: ApiContext, name: str):
    from tabpilot.api.training import _worker_gone  # one liveness rule for every worker

    row = ctx.store.find_resource(KIND, name)
    if row is None:
        return None
    if row.status in ACTIVE and _worker_gone(row.spec):
        ctx.store.update_resource(KIND, name, status="Failed", ended=time.time(),
                                  failure_reason="InternalServerError: the processing worker "
                                  f"exited unexpectedly; its log is `tabpilot logs {name}`")
        row = ctx.store.find_resource(KIND, name)
    return row


def _not_found(name: str) -> ApiError:
    return validation_error(f"Could not find requested job with name {name}")


def describe(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["ProcessingJobName"]
    row = current_row(ctx, name)
    if row is None:
        execution = ctx.store.find_resource(EXECUTION, name)
        if execution is None:
            raise _not_found(name)
        return _execution(execution)
    spec, req = row.spec, row.spec["request"]
    return {
        **{k: req[k] for k in ("ProcessingInputs", "ProcessingOutputConfig",
                               "ProcessingResources", "AppSpecification", "Environment",
                               "NetworkConfig", "RoleArn", "ExperimentConfig") if k in req},
        "ProcessingJobName": row.name, "ProcessingJobArn": arn(KIND, row.name),
        "StoppingCondition": req.get("StoppingCondition") or DEFAULT_STOPPING,
        "ProcessingJobStatus": row.status, "FailureReason": row.failure_reason,
        "ExitMessage": spec.get("exit_message"),
        "ProcessingStartTime": spec.get("started"), "ProcessingEndTime": row.ended,
        "CreationTime": row.created, "LastModifiedTime": row.modified,
    }


EXECUTION_STATUS = {"Pending": "InProgress", "CompletedWithViolations": "Completed"}


def _execution(row) -> dict[str, Any]:
    """A monitoring execution as the processing job SageMaker runs it."""
    spec = row.spec
    job = spec.get("job") or {}
    output = spec.get("Output") or job.get("Output")
    image = "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    message = {"CompletedWithViolations": "CompletedWithViolations: Job completed "
               "successfully with violations (constraint_violations.json)",
               "Completed": "Completed: Job completed successfully with no violations."}
    return {
        "ProcessingJobName": row.name, "ProcessingJobArn": arn(KIND, row.name),
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1,
                                                  "InstanceType": "ml.m5.xlarge",
                                                  "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": image},
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "monitoring_output", "S3Output": {
            "S3Uri": output, "LocalPath": f"{PROCESSING_ROOT}/output",
            "S3UploadMode": "EndOfJob"}}]} if output else None,
        "Environment": job.get("Environment") or None,
        "ProcessingJobStatus": EXECUTION_STATUS.get(row.status, row.status),
        "ExitMessage": message.get(row.status), "FailureReason": row.failure_reason,
        "CreationTime": row.created, "LastModifiedTime": row.modified,
        "ProcessingEndTime": row.ended,
        "MonitoringScheduleArn": arn("monitoring-schedule", spec["MonitoringScheduleName"]),
    }


def list_jobs(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    chosen, token = named_page(ctx.store.list_resources(KIND), p)
    return {"ProcessingJobSummaries": [{
        "ProcessingJobName": r.name, "ProcessingJobArn": arn(KIND, r.name),
        "CreationTime": r.created, "ProcessingEndTime": r.ended,
        "LastModifiedTime": r.modified, "ProcessingJobStatus": r.status,
        "FailureReason": r.failure_reason, "ExitMessage": r.spec.get("exit_message"),
    } for r in chosen], "NextToken": token}


def stop(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["ProcessingJobName"]
    row = current_row(ctx, name)
    if row is None:
        raise _not_found(name)
    if row.status != "InProgress":
        raise validation_error(f"The processing job {name} is {row.status}; only an "
                               "InProgress job can be stopped")
    ctx.store.update_resource(KIND, name, status="Stopping")
    return {}


OPERATIONS = {
    "CreateProcessingJob": create, "DescribeProcessingJob": describe,
    "ListProcessingJobs": list_jobs, "StopProcessingJob": stop,
}
