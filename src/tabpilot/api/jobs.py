"""The AutoML job operations: CreateAutoMLJob(V2), DescribeAutoMLJob(V2), ListAutoMLJobs,
ListCandidatesForAutoMLJob, StopAutoMLJob.

A V1 request is rewritten into V2's form once, on arrival; both Describe operations read
the same stored request. The job itself runs in a worker process (`api/worker.py`) that
adopts the job row created here, so Describe answers from the moment Create returns.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tabpilot import __version__
from tabpilot.api import forecast_jobs, text_jobs
from tabpilot.api.context import ApiContext
from tabpilot.api.locations import join
from tabpilot.api.paging import named_page, page
from tabpilot.api.shapes import ApiError, validation_error
from tabpilot.config import JobRequest
from tabpilot.errors import TabpilotError
from tabpilot.jobs import heartbeat
from tabpilot.jobs import status as st
from tabpilot.jobs.views import arn, candidates_view, check_alive, describe_job
from tabpilot.store import JobRow

KIND = "automl-job"
DEFAULT_ROLE = "arn:aws:iam::000000000000:role/tabpilot"
IMAGE = f"tabpilot-inference:{__version__}"
ALGORITHMS = {"xgboost": "xgboost", "lightgbm": "lightgbm", "catboost": "catboost",
              "randomforest": "random_forest", "extra-trees": "extra_trees",
              "linear-learner": "linear", "mlp": "mlp", "nn-torch": "mlp", "fastai": "mlp"}
PROBLEM_TYPES = {"BinaryClassification": "binary", "MulticlassClassification": "multiclass",
                 "Regression": "regression"}
MODES = {"AUTO": "auto", "ENSEMBLING": "ensembling", "HYPERPARAMETER_TUNING": "hpo"}
TRAINING_FIELD = "AutoMLJobInputDataConfig.DataSource.S3DataSource.S3Uri"
OUTPUT_FIELD = "OutputDataConfig.S3OutputPath"
TABULAR_METRICS = {"Accuracy", "AUC", "BalancedAccuracy", "F1", "F1macro", "Precision",
                   "PrecisionMacro", "Recall", "RecallMacro", "LogLoss", "MAE", "MSE", "R2",
                   "RMSE"}


# -- requests ---------------------------------------------------------------------------
def v1_to_v2(p: dict[str, Any]) -> dict[str, Any]:
    """CreateAutoMLJob's request in CreateAutoMLJobV2's form."""
    channels = p["InputDataConfig"]
    config = p.get("AutoMLJobConfig", {})
    generation = config.get("CandidateGenerationConfig", {})
    first = next((c for c in channels if c.get("ChannelType", "training") == "training"),
                 channels[0])
    tabular = {
        "TargetAttributeName": first["TargetAttributeName"],
        "SampleWeightAttributeName": first.get("SampleWeightAttributeName"),
        "ProblemType": p.get("ProblemType"),
        "CompletionCriteria": config.get("CompletionCriteria"),
        "Mode": config.get("Mode"),
        "GenerateCandidateDefinitionsOnly": p.get("GenerateCandidateDefinitionsOnly"),
        "FeatureSpecificationS3Uri": generation.get("FeatureSpecificationS3Uri"),
        "CandidateGenerationConfig": {"AlgorithmsConfig": generation["AlgorithmsConfig"]}
        if generation.get("AlgorithmsConfig") else None,
    }
    return _drop_none({
        "AutoMLJobName": p["AutoMLJobName"],
        "AutoMLJobInputDataConfig": [_drop_none({
            "ChannelType": c.get("ChannelType", "training"), "ContentType": c.get("ContentType"),
            "CompressionType": c.get("CompressionType"), "DataSource": c["DataSource"]})
            for c in channels],
        "OutputDataConfig": p["OutputDataConfig"],
        "RoleArn": p["RoleArn"],
        "Tags": p.get("Tags"),
        "AutoMLJobObjective": p.get("AutoMLJobObjective"),
        "ModelDeployConfig": p.get("ModelDeployConfig"),
        "DataSplitConfig": config.get("DataSplitConfig"),
        "SecurityConfig": config.get("SecurityConfig"),
        "AutoMLProblemTypeConfig": {"TabularJobConfig": _drop_none(tabular)},
    })


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def channel_uri(p: dict[str, Any], kind: str) -> str | None:
    for channel in p["AutoMLJobInputDataConfig"]:
        if channel.get("ChannelType", "training") == kind:
            return channel["DataSource"]["S3DataSource"]["S3Uri"]
    return None


def job_request(ctx: ApiContext, p: dict[str, Any]) -> JobRequest:
    """The tabpilot JobRequest that a V2 request asks for; ValidationException if it can't be."""
    text = text_jobs.is_text(p)  # a tabular job underneath, its one feature the text
    tabular = text_jobs.as_tabular(p) if text else \
        p["AutoMLProblemTypeConfig"].get("TabularJobConfig")
    if tabular is None:
        other = next(iter(p["AutoMLProblemTypeConfig"]), "none")
        raise validation_error(f"tabpilot runs tabular, text classification and forecasting "
                               f"jobs; AutoMLProblemTypeConfig has {other}, give "
                               f"TabularJobConfig, {text_jobs.CONFIG} or "
                               f"{forecast_jobs.CONFIG}")
    channels = [c.get("ChannelType", "training") for c in p["AutoMLJobInputDataConfig"]]
    if channels.count("training") != 1 or channels.count("validation") > 1:
        raise validation_error("AutoMLJobInputDataConfig needs one training channel and at most "
                               "one validation channel")
    for channel in p["AutoMLJobInputDataConfig"]:
        if channel["DataSource"]["S3DataSource"]["S3DataType"] != "S3Prefix":
            raise validation_error("tabpilot reads S3DataType S3Prefix (a file or a prefix of "
                                   "files); manifest files are not supported")
    criteria = tabular.get("CompletionCriteria", {})
    metric = p.get("AutoMLJobObjective", {}).get("MetricName")
    if metric is not None and metric not in TABULAR_METRICS:
        raise validation_error(f"{metric} is no objective for tabular jobs; use one of: "
                               f"{', '.join(sorted(TABULAR_METRICS))}")
    algorithms = None
    for group in tabular.get("CandidateGenerationConfig", {}).get("AlgorithmsConfig", []):
        names = group.get("AutoMLAlgorithms", [])
        unknown = [a for a in names if a not in ALGORITHMS]
        if unknown:
            raise validation_error(f"algorithm {unknown[0]} is not for tabular jobs; use any of: "
                                   f"{', '.join(ALGORITHMS)}")
        algorithms = sorted({ALGORITHMS[a] for a in names})
    validation = channel_uri(p, "validation")
    features = tabular.get("FeatureSpecificationS3Uri")
    fields: dict[str, Any] = dict(
        name=p["AutoMLJobName"],
        target=tabular["TargetAttributeName"],
        problem_type=PROBLEM_TYPES.get(tabular.get("ProblemType", "")),
        metric=metric,
        mode=MODES.get(tabular.get("Mode", "AUTO"), "auto"),
        time_limit=criteria.get("MaxAutoMLJobRuntimeInSeconds"),
        max_candidates=criteria.get("MaxCandidates"),
        per_trial_time_limit=criteria.get("MaxRuntimePerTrainingJobInSeconds"),
        validation_fraction=p.get("DataSplitConfig", {}).get("ValidationFraction"),
        validation_data=ctx.locations.table_files(validation, TRAINING_FIELD)[0]
        if validation else None,
        sample_weight=tabular.get("SampleWeightAttributeName"),
        feature_types=ctx.locations.resolve(
            features, "TabularJobConfig.FeatureSpecificationS3Uri") if features else None,
        algorithms=algorithms,
        **tag_options(p.get("Tags") or []),
    )
    if text:
        fields.update(text_jobs.request_fields(p))
    if tabular.get("GenerateCandidateDefinitionsOnly"):
        if "generate_candidates_only" not in JobRequest.model_fields:
            raise validation_error("GenerateCandidateDefinitionsOnly is not supported yet")
        fields["generate_candidates_only"] = True
    try:
        return JobRequest.build(**fields)
    except TabpilotError as exc:
        raise validation_error(str(exc)) from None


def tag_options(tags: list[dict[str, str]]) -> dict[str, Any]:
    """tabpilot's options that Autopilot's request has no field for, as tags boto3 can
    send: `tabpilot:folds` (k-fold cross-validation) and `tabpilot:max-latency-ms` (the
    best candidate within a p50 latency bound). Other tags are the user's own."""
    out: dict[str, Any] = {}
    for tag in tags:
        option = TAG_OPTIONS.get(tag.get("Key", ""))
        if option is None:
            continue
        field, kind = option
        try:
            out[field] = kind(tag.get("Value", ""))
        except ValueError:
            raise validation_error(f"tag {tag['Key']}: {tag.get('Value', '')!r} is not a "
                                   f"{'whole number' if kind is int else 'number'}") from None
    return out


TAG_OPTIONS: dict[str, tuple[str, type]] = {"tabpilot:folds": ("n_folds", int),
                                            "tabpilot:max-latency-ms": ("max_latency_ms", float)}


# -- operations -------------------------------------------------------------------------
def create_v1(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    return _create(ctx, v1_to_v2(p), version=1)


def create_v2(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    return _create(ctx, p, version=2)


def _create(ctx: ApiContext, p: dict[str, Any], version: int) -> dict[str, Any]:
    name = p["AutoMLJobName"]
    if ctx.store.job_exists(name):
        raise ApiError("ResourceInUse", f"Job with name {name} already exists.")
    ctx.locations.table_files(channel_uri(p, "training"), TRAINING_FIELD)
    ctx.locations.resolve_output(p["OutputDataConfig"]["S3OutputPath"], OUTPUT_FIELD)
    if forecast_jobs.is_forecasting(p):
        return forecast_jobs.create(ctx, p, version, channel_uri(p, "training"))
    request = job_request(ctx, p)
    job_dir = ctx.workspace / "jobs" / name
    try:
        ctx.store.create_job(
            name=name, status=st.IN_PROGRESS, secondary_status=st.STARTING,
            target=request.target, input_uri=channel_uri(p, "training"), mode=request.mode,
            request=request.model_dump(mode="json"), job_dir=str(job_dir), pid=None)
    except TabpilotError:
        raise ApiError("ResourceInUse", f"Job with name {name} already exists.") from None
    if ctx.store.find_resource(KIND, name):  # left by a job deleted outside the API
        ctx.store.delete_resource(KIND, name)
    ctx.store.add_resource(KIND, name, {"version": version, "request": p, "published": False})
    pid = ctx.launch("job", name)
    ctx.store.update_job(name, pid=pid)
    return {"AutoMLJobArn": arn("automl-job", name)}


def _job(ctx: ApiContext, name: str) -> JobRow:
    if not ctx.store.job_exists(name):
        raise ApiError("ResourceNotFound", f"AutoML job {name} does not exist.")
    return check_alive(ctx.store, ctx.store.get_job(name))


def _sagemaker_request(ctx: ApiContext, name: str) -> dict[str, Any]:
    row = ctx.store.find_resource(KIND, name)
    return row.spec if row is not None else {}


def _relocate(value: Any, local: str, remote: str) -> Any:
    """Artifact paths inside the job folder, as the output location they were copied to."""
    if isinstance(value, str):
        return remote + value[len(local):] if value.startswith(local) else value
    if isinstance(value, dict):
        return {k: _relocate(v, local, remote) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocate(v, local, remote) for v in value]
    return value


def _outputs(row: JobRow, spec: dict[str, Any], value: Any) -> Any:
    if not spec.get("published"):
        return value
    remote = join(spec["request"]["OutputDataConfig"]["S3OutputPath"], row.name)
    return _relocate(value, str(Path(row.job_dir)), remote)


def _containers(candidate: dict[str, Any]) -> None:
    """The inference container of a candidate, as Autopilot lists it."""
    for container in candidate.get("InferenceContainers", []):
        container["Image"] = IMAGE
        container["Environment"] = {
            "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label",
            "SAGEMAKER_INFERENCE_SUPPORTED": "predicted_label,probability,probabilities,labels",
            "SAGEMAKER_INFERENCE_INPUT": "text/csv",
        }
    locations = candidate.get("CandidateProperties", {}).get("CandidateArtifactLocations")
    if locations is not None and "Explainability" not in locations:
        candidate["CandidateProperties"].pop("CandidateArtifactLocations")


def _finishing(row: JobRow, spec: dict[str, Any]) -> bool:
    """The job has ended but its API worker, alive, is still copying the outputs to
    S3OutputPath or deploying (it records `partial_failures` when done). SageMaker says
    Completed only once the artifacts are there, so a caller that waits for Completed
    finds them; a worker that died is silent past the grace and its status shows."""
    return (row.status not in st.ACTIVE and "request" in spec
            and "partial_failures" not in spec and row.heartbeat is not None
            and row.heartbeat >= time.time() - heartbeat.grace())


def _held_in_progress(view: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    view["AutoMLJobStatus"] = st.IN_PROGRESS
    deploy = spec["request"].get("ModelDeployConfig") or {}
    if deploy.get("EndpointName") or deploy.get("AutoGenerateEndpointName"):
        view["AutoMLJobSecondaryStatus"] = "DeployingModel"
    view.pop("EndTime", None)
    return view


def describe_v2(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _job(ctx, p["AutoMLJobName"])
    view = describe_job(ctx.store, row.name)
    spec = _sagemaker_request(ctx, row.name)
    if _finishing(row, spec):
        view = _held_in_progress(view, spec)
    if "TimeSeriesForecastingJobConfig" in view["AutoMLProblemTypeConfig"]:
        return _outputs(row, spec, forecast_jobs.describe(view, spec, IMAGE))
    req = spec.get("request", {})
    if view.get("BestCandidate"):
        _containers(view["BestCandidate"])
    text = (row.request or {}).get("text_column") is not None
    if not row.metric:  # not resolved yet: the one asked for, if any
        asked = req.get("AutoMLJobObjective")
        view["AutoMLJobObjective"] = asked
        view["ResolvedAttributes"].pop("AutoMLJobObjective")
    view["RoleArn"] = req.get("RoleArn", DEFAULT_ROLE)
    for key in ("AutoMLJobInputDataConfig", "OutputDataConfig", "SecurityConfig",
                "ModelDeployConfig", "DataSplitConfig"):
        if key in req:
            view[key] = req[key]
    if text:
        view = text_jobs.describe(view, req, row.request or {})
    elif "AutoMLProblemTypeConfig" in req:
        asked = req["AutoMLProblemTypeConfig"]["TabularJobConfig"]
        resolved = view["AutoMLProblemTypeConfig"]["TabularJobConfig"]
        view["AutoMLProblemTypeConfig"] = {"TabularJobConfig": {**resolved, **asked}}
    if not text:
        view["AutoMLProblemTypeConfig"]["TabularJobConfig"].setdefault("Mode", "AUTO")
    if spec.get("endpoint"):
        view["ModelDeployResult"] = {"EndpointName": spec["endpoint"]}
    # the job's own (reports) are in the view already; add the worker's (copying outputs)
    view["PartialFailureReasons"] = (view.get("PartialFailureReasons", []) + [
        {"PartialFailureMessage": m} for m in spec.get("partial_failures", [])])[:5]
    return _outputs(row, spec, view)


def describe_v1(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    if _job(ctx, p["AutoMLJobName"]).problem_type == forecast_jobs.PROBLEM_TYPE:
        raise validation_error(f"{p['AutoMLJobName']} is a TimeSeriesForecasting job, which "
                               "DescribeAutoMLJob cannot describe; call DescribeAutoMLJobV2")
    v2 = describe_v2(ctx, p)
    if "TabularJobConfig" not in v2["AutoMLProblemTypeConfig"]:
        raise validation_error(f"job {v2['AutoMLJobName']} is a "
                               f"{v2.get('AutoMLProblemTypeConfigName', 'V2')} job; "
                               "describe it with DescribeAutoMLJobV2")
    tabular = v2["AutoMLProblemTypeConfig"]["TabularJobConfig"]
    channels = []
    for channel in v2["AutoMLJobInputDataConfig"]:
        channels.append({**channel, "TargetAttributeName": tabular["TargetAttributeName"]})
    resolved = v2.get("ResolvedAttributes", {})
    generation = {"FeatureSpecificationS3Uri": tabular.get("FeatureSpecificationS3Uri"),
                  **tabular.get("CandidateGenerationConfig", {})}
    return {
        **{k: v2.get(k) for k in (
            "AutoMLJobName", "AutoMLJobArn", "OutputDataConfig", "RoleArn", "AutoMLJobObjective",
            "CreationTime", "EndTime", "LastModifiedTime", "FailureReason", "PartialFailureReasons",
            "BestCandidate", "AutoMLJobStatus", "AutoMLJobSecondaryStatus", "AutoMLJobArtifacts",
            "ModelDeployConfig", "ModelDeployResult")},
        "InputDataConfig": channels,
        "ProblemType": tabular.get("ProblemType"),
        "GenerateCandidateDefinitionsOnly": bool(tabular.get("GenerateCandidateDefinitionsOnly")),
        "AutoMLJobConfig": _drop_none({
            "CompletionCriteria": tabular.get("CompletionCriteria"),
            "Mode": tabular.get("Mode"),
            "DataSplitConfig": v2.get("DataSplitConfig"),
            "SecurityConfig": v2.get("SecurityConfig"),
            "CandidateGenerationConfig": _drop_none(generation) or None,
        }),
        "ResolvedAttributes": {
            "AutoMLJobObjective": resolved.get("AutoMLJobObjective"),
            "ProblemType": tabular.get("ProblemType"),
            "CompletionCriteria": resolved.get("CompletionCriteria"),
        },
    }


def list_jobs(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    rows = [check_alive(ctx.store, r) for r in ctx.store.list_jobs()]
    chosen, token = named_page(rows, p)
    summaries = [{
        "AutoMLJobName": r.name, "AutoMLJobArn": arn("automl-job", r.name),
        "AutoMLJobStatus": r.status, "AutoMLJobSecondaryStatus": r.secondary_status,
        "CreationTime": r.created, "EndTime": r.ended, "LastModifiedTime": r.modified,
        "FailureReason": r.failure_reason,
    } for r in chosen]
    return {"AutoMLJobSummaries": summaries, "NextToken": token}


def list_candidates(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _job(ctx, p["AutoMLJobName"])
    candidates = candidates_view(ctx.store, row.name)["Candidates"]
    candidates = [c for c in candidates
                  if p.get("StatusEquals") in (None, c["CandidateStatus"])
                  and p.get("CandidateNameEquals") in (None, c["CandidateName"])]
    for c in candidates:
        if row.problem_type == forecast_jobs.PROBLEM_TYPE:
            forecast_jobs.containers(c, IMAGE)
        else:
            _containers(c)

    def objective(c: dict[str, Any]) -> float | None:
        metric = c.get("FinalAutoMLJobObjectiveMetric")
        return None if not metric else metric.get("Value")

    chosen, token = page(candidates, p, {
        "CreationTime": lambda c: c["CreationTime"], "Status": lambda c: c["CandidateStatus"],
        "FinalObjectiveMetricValue": objective}, None, default_size=100)
    return {"Candidates": _outputs(row, _sagemaker_request(ctx, row.name), chosen),
            "NextToken": token}


def stop(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _job(ctx, p["AutoMLJobName"])
    ctx.store.request_stop(row.name)
    return {}


OPERATIONS = {
    "CreateAutoMLJob": create_v1, "CreateAutoMLJobV2": create_v2,
    "DescribeAutoMLJob": describe_v1, "DescribeAutoMLJobV2": describe_v2,
    "ListAutoMLJobs": list_jobs, "ListCandidatesForAutoMLJob": list_candidates,
    "StopAutoMLJob": stop,
}
