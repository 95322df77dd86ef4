"""SageMaker Experiments: experiments, trials and trial components, and their associations.

    Create/Describe/List/Update/DeleteExperiment, ...Trial, ...TrialComponent,
    AssociateTrialComponent, DisassociateTrialComponent

Each entity is a resource row (`experiment`, `experiment-trial`, `trial-component`) keyed
by its name in lower case: SageMaker's names are unique regardless of case (the SDK's `Run`
lower-cases them, a user's own calls may not), and the row keeps the name as given. A trial
component's row lists the trials it belongs to; a trial's row names its experiment. As on
SageMaker, deleting is refused while something still hangs below (an experiment with
trials, a trial with components, a component in a trial: `ResourceInUse`), and creating a
name that exists is a `ValidationException` that says "already exists" (the SDK's
load-or-create relies on those words).

Every training job gets a trial component, `<job>-aws-training-job` (`api/experiment_jobs.py`:
created with the job, associated as its ExperimentConfig says, filled from the job when
described). Metrics logged with BatchPutMetrics (`api/metrics_service.py`) live in a
`trial-metrics` row per component.

Read-modify-write of these rows happens under one lock: the server is their only writer
(a training job's worker never writes them).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from tabpilot.api.context import ApiContext
from tabpilot.api.paging import page
from tabpilot.api.shapes import ApiError, validation_error
from tabpilot.errors import ResourceExistsError
from tabpilot.experiments import series as metric_series
from tabpilot.jobs.arns import arn

log = logging.getLogger("tabpilot.api.experiments")
EXPERIMENT, TRIAL, COMPONENT, METRICS = ("experiment", "experiment-trial", "trial-component",
                                         "trial-metrics")
ARN_KIND = {EXPERIMENT: "experiment", TRIAL: "experiment-trial",
            COMPONENT: "experiment-trial-component"}
LABEL = {EXPERIMENT: "Experiment", TRIAL: "Trial", COMPONENT: "Trial component"}
JOB_SUFFIX = "-aws-training-job"
TRAINING_SOURCE = "SageMakerTrainingJob"
MAX_PARAMETERS, MAX_ARTIFACTS = 300, 60
LOCK = threading.RLock()


# -- rows -------------------------------------------------------------------------------
def key(name: str) -> str:
    """A name as its row is keyed; an ARN's last part is the name."""
    return name.rsplit("/", 1)[-1].lower() if name.startswith("arn:") else name.lower()


def find(ctx: ApiContext, kind: str, name: str):
    return ctx.store.find_resource(kind, key(name))


def get(ctx: ApiContext, kind: str, name: str):
    row = find(ctx, kind, name)
    if row is None:
        raise ApiError("ResourceNotFound", f"{LABEL[kind]} '{key(name)}' does not exist.")
    return row


def rows(ctx: ApiContext, kind: str) -> list:
    return ctx.store.list_resources(kind)


def _add(ctx: ApiContext, kind: str, name: str, spec: dict[str, Any]) -> None:
    if find(ctx, kind, name) is not None:
        raise validation_error(f"{LABEL[kind]} '{name}' already exists.")
    try:
        ctx.store.add_resource(kind, key(name), {"name": name, **spec})
    except ResourceExistsError:
        raise validation_error(f"{LABEL[kind]} '{name}' already exists.") from None


def _arn(kind: str, row_or_name: Any) -> str:
    name = row_or_name if isinstance(row_or_name, str) else row_or_name.spec["name"]
    return arn(ARN_KIND[kind], name)


def _window(p: dict[str, Any], created: float) -> bool:
    return (p.get("CreatedAfter") is None or created > p["CreatedAfter"]) and \
        (p.get("CreatedBefore") is None or created < p["CreatedBefore"])


def _listed(items: list, p: dict[str, Any], name_of: Any) -> tuple[list, str | None]:
    return page(items, p, {"Name": name_of, "CreationTime": lambda r: r.created},
                "CreationTime")


# -- experiments ------------------------------------------------------------------------
def create_experiment(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        _add(ctx, EXPERIMENT, p["ExperimentName"],
             {k: p[k] for k in ("DisplayName", "Description", "Tags") if k in p})
    return {"ExperimentArn": _arn(EXPERIMENT, p["ExperimentName"])}


def experiment_record(row: Any) -> dict[str, Any]:
    spec = row.spec
    return {"ExperimentName": spec["name"], "ExperimentArn": _arn(EXPERIMENT, row),
            "DisplayName": spec.get("DisplayName") or spec["name"],
            "Description": spec.get("Description"), "CreationTime": row.created,
            "LastModifiedTime": row.modified, "CreatedBy": {}, "LastModifiedBy": {},
            "Tags": spec.get("Tags") or []}


def describe_experiment(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    return experiment_record(get(ctx, EXPERIMENT, p["ExperimentName"]))


def list_experiments(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    kept = [r for r in rows(ctx, EXPERIMENT) if _window(p, r.created)]
    chosen, token = _listed(kept, p, lambda r: r.spec["name"])
    return {"ExperimentSummaries": [{
        "ExperimentArn": _arn(EXPERIMENT, r), "ExperimentName": r.spec["name"],
        "DisplayName": r.spec.get("DisplayName") or r.spec["name"],
        "CreationTime": r.created, "LastModifiedTime": r.modified} for r in chosen],
        "NextToken": token}


def update_experiment(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        row = get(ctx, EXPERIMENT, p["ExperimentName"])
        spec = {**row.spec, **{k: p[k] for k in ("DisplayName", "Description") if k in p}}
        ctx.store.update_resource(EXPERIMENT, row.name, spec=spec)
    return {"ExperimentArn": _arn(EXPERIMENT, row)}


def trials_of(ctx: ApiContext, experiment: str) -> list:
    return [r for r in rows(ctx, TRIAL) if r.spec["experiment"] == key(experiment)]


def delete_experiment(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        row = get(ctx, EXPERIMENT, p["ExperimentName"])
        trials = trials_of(ctx, row.name)
        if trials:
            shown = ", ".join(t.spec["name"] for t in trials[:3])
            raise ApiError("ResourceInUse", f"Experiment '{row.spec['name']}' still has "
                           f"{len(trials)} trial(s) ({shown}{', ...' if len(trials) > 3 else ''}"
                           "); delete them first (the SDK's Experiment.delete_all(action="
                           "'--force') deletes everything below an experiment)")
        ctx.store.delete_resource(EXPERIMENT, row.name)
    return {"ExperimentArn": _arn(EXPERIMENT, row)}


# -- trials -----------------------------------------------------------------------------
def create_trial(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        experiment = get(ctx, EXPERIMENT, p["ExperimentName"])
        _add(ctx, TRIAL, p["TrialName"], {
            "experiment": experiment.name, "ExperimentName": experiment.spec["name"],
            **{k: p[k] for k in ("DisplayName", "MetadataProperties", "Tags") if k in p}})
    return {"TrialArn": _arn(TRIAL, p["TrialName"])}


def components_of(ctx: ApiContext, trial: str) -> list:
    return [r for r in rows(ctx, COMPONENT) if key(trial) in r.spec.get("trials", [])]


def trial_record(ctx: ApiContext, row: Any, components: bool = False) -> dict[str, Any]:
    spec = row.spec
    out = {"TrialName": spec["name"], "TrialArn": _arn(TRIAL, row),
           "DisplayName": spec.get("DisplayName") or spec["name"],
           "ExperimentName": spec["ExperimentName"], "CreationTime": row.created,
           "LastModifiedTime": row.modified, "CreatedBy": {}, "LastModifiedBy": {},
           "MetadataProperties": spec.get("MetadataProperties"), "Tags": spec.get("Tags") or []}
    if components:
        out["TrialComponentSummaries"] = [{
            "TrialComponentName": c.spec["name"], "TrialComponentArn": _arn(COMPONENT, c),
            "TrialComponentSource": source(c.spec), "CreationTime": c.created,
            "CreatedBy": {}} for c in components_of(ctx, row.name)]
    return out


def describe_trial(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    return trial_record(ctx, get(ctx, TRIAL, p["TrialName"]))


def list_trials(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    kept = [r for r in rows(ctx, TRIAL) if _window(p, r.created)]
    if p.get("ExperimentName"):
        experiment = get(ctx, EXPERIMENT, p["ExperimentName"])
        kept = [r for r in kept if r.spec["experiment"] == experiment.name]
    if p.get("TrialComponentName"):
        component = get(ctx, COMPONENT, p["TrialComponentName"])
        kept = [r for r in kept if r.name in component.spec.get("trials", [])]
    chosen, token = _listed(kept, p, lambda r: r.spec["name"])
    return {"TrialSummaries": [{
        "TrialArn": _arn(TRIAL, r), "TrialName": r.spec["name"],
        "DisplayName": r.spec.get("DisplayName") or r.spec["name"],
        "CreationTime": r.created, "LastModifiedTime": r.modified} for r in chosen],
        "NextToken": token}


def update_trial(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        row = get(ctx, TRIAL, p["TrialName"])
        if "DisplayName" in p:
            ctx.store.update_resource(TRIAL, row.name,
                                      spec={**row.spec, "DisplayName": p["DisplayName"]})
    return {"TrialArn": _arn(TRIAL, row)}


def delete_trial(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        row = get(ctx, TRIAL, p["TrialName"])
        components = components_of(ctx, row.name)
        if components:
            raise ApiError("ResourceInUse", f"Trial '{row.spec['name']}' still has "
                           f"{len(components)} trial component(s) (e.g. "
                           f"{components[0].spec['name']}); disassociate them first with "
                           "DisassociateTrialComponent")
        ctx.store.delete_resource(TRIAL, row.name)
    return {"TrialArn": _arn(TRIAL, row)}


# -- trial components -------------------------------------------------------------------
def _check_values(p: dict[str, Any]) -> None:
    for name, value in (p.get("Parameters") or {}).items():
        if ("StringValue" in value) == ("NumberValue" in value):
            raise validation_error(f"Parameters.{name}: give exactly one of StringValue and "
                                   "NumberValue")


def create_component(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    _check_values(p)
    with LOCK:
        _add(ctx, COMPONENT, p["TrialComponentName"], {
            "trials": [], **{k: p[k] for k in (
                "DisplayName", "Status", "StartTime", "EndTime", "Parameters", "InputArtifacts",
                "OutputArtifacts", "MetadataProperties", "Tags") if k in p}})
    return {"TrialComponentArn": _arn(COMPONENT, p["TrialComponentName"])}


def _merged(spec: dict[str, Any], p: dict[str, Any], field: str, limit: int) -> dict:
    given, removed = p.get(field) or {}, p.get(f"{field}ToRemove") or []
    both = sorted(set(given) & set(removed))
    if both:
        raise validation_error(f"{both[0]!r} is both in {field} and in {field}ToRemove")
    out = {k: v for k, v in (spec.get(field) or {}).items() if k not in removed}
    out.update(given)
    if len(out) > limit:
        raise validation_error(f"a trial component holds at most {limit} {field}; this update "
                               f"would leave {len(out)}")
    return out


def update_component(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    _check_values(p)
    with LOCK:
        row = get(ctx, COMPONENT, p["TrialComponentName"])
        spec = dict(row.spec)
        spec.update({k: p[k] for k in ("DisplayName", "Status", "StartTime", "EndTime")
                     if k in p})
        spec["Parameters"] = _merged(row.spec, p, "Parameters", MAX_PARAMETERS)
        spec["InputArtifacts"] = _merged(row.spec, p, "InputArtifacts", MAX_ARTIFACTS)
        spec["OutputArtifacts"] = _merged(row.spec, p, "OutputArtifacts", MAX_ARTIFACTS)
        ctx.store.update_resource(COMPONENT, row.name, spec=spec)
    return {"TrialComponentArn": _arn(COMPONENT, row)}


def source(spec: dict[str, Any]) -> dict[str, str] | None:
    job = spec.get("training_job")
    return {"SourceArn": arn("training-job", job), "SourceType": TRAINING_SOURCE} \
        if job else None


def component_record(ctx: ApiContext, row: Any, search: bool = False) -> dict[str, Any]:
    """DescribeTrialComponent's answer; with `search`, Search's TrialComponent record
    (Parents, Tags, the source job's description)."""
    spec = row.spec
    out: dict[str, Any] = {
        "TrialComponentName": spec["name"], "TrialComponentArn": _arn(COMPONENT, row),
        "DisplayName": spec.get("DisplayName") or spec["name"], "Source": source(spec),
        "Status": spec.get("Status"), "StartTime": spec.get("StartTime"),
        "EndTime": spec.get("EndTime"), "CreationTime": row.created,
        "LastModifiedTime": row.modified, "CreatedBy": {}, "LastModifiedBy": {},
        "Parameters": dict(spec.get("Parameters") or {}),
        "InputArtifacts": dict(spec.get("InputArtifacts") or {}),
        "OutputArtifacts": dict(spec.get("OutputArtifacts") or {}),
        "MetadataProperties": spec.get("MetadataProperties"), "Metrics": []}
    job = spec.get("training_job")
    described = None
    if job:
        from tabpilot.api import experiment_jobs  # it imports this module

        described = experiment_jobs.fill(ctx, out, job)
    logged = find(ctx, METRICS, spec["name"])
    names = {m["MetricName"] for m in out["Metrics"]}
    for name, kept in sorted(((logged.spec.get("metrics") or {}) if logged else {}).items()):
        if name not in names:
            out["Metrics"].append({"MetricName": name, **metric_series.summary(kept)})
    if search:
        out["Tags"] = spec.get("Tags") or []
        out["RunName"] = spec.get("RunName")
        parents = []
        for trial in spec.get("trials", []):
            trial_row = find(ctx, TRIAL, trial)
            if trial_row is not None:
                parents.append({"TrialName": trial_row.spec["name"],
                                "ExperimentName": trial_row.spec["ExperimentName"]})
        out["Parents"] = parents
        if described is not None:
            out["SourceDetail"] = {"SourceArn": out["Source"]["SourceArn"],
                                   "TrainingJob": described}
    return out


def describe_component(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    return component_record(ctx, get(ctx, COMPONENT, p["TrialComponentName"]))


def list_components(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    given = [k for k in ("ExperimentName", "TrialName", "SourceArn") if p.get(k)]
    if len(given) > 1:
        raise validation_error(f"give at most one of ExperimentName, TrialName and SourceArn; "
                               f"got {' and '.join(given)}")
    kept = [r for r in rows(ctx, COMPONENT) if _window(p, r.created)]
    if p.get("ExperimentName"):
        trials = {t.name for t in trials_of(ctx, get(ctx, EXPERIMENT, p["ExperimentName"]).name)}
        kept = [r for r in kept if trials & set(r.spec.get("trials", []))]
    elif p.get("TrialName"):
        trial = get(ctx, TRIAL, p["TrialName"])
        kept = [r for r in kept if trial.name in r.spec.get("trials", [])]
    elif p.get("SourceArn"):
        kept = [r for r in kept if (source(r.spec) or {}).get("SourceArn") == p["SourceArn"]]
    chosen, token = _listed(kept, p, lambda r: r.spec["name"])
    out = []
    for r in chosen:
        record = component_record(ctx, r)
        out.append({k: record.get(k) for k in (
            "TrialComponentName", "TrialComponentArn", "DisplayName", "Status", "StartTime",
            "EndTime", "CreationTime", "CreatedBy", "LastModifiedTime", "LastModifiedBy")}
            | {"TrialComponentSource": record["Source"]})
    return {"TrialComponentSummaries": out, "NextToken": token}


def delete_component(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        row = get(ctx, COMPONENT, p["TrialComponentName"])
        if row.spec.get("trials"):
            raise ApiError("ResourceInUse", f"Trial component '{row.spec['name']}' is still in "
                           f"trial(s) {', '.join(row.spec['trials'])}; disassociate it first "
                           "with DisassociateTrialComponent")
        ctx.store.delete_resource(COMPONENT, row.name)
        if find(ctx, METRICS, row.name) is not None:
            ctx.store.delete_resource(METRICS, row.name)
    return {"TrialComponentArn": _arn(COMPONENT, row)}


def associate(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        component = get(ctx, COMPONENT, p["TrialComponentName"])
        trial = get(ctx, TRIAL, p["TrialName"])
        trials = list(component.spec.get("trials", []))
        if trial.name not in trials:  # associating twice changes nothing
            ctx.store.update_resource(COMPONENT, component.name,
                                      spec={**component.spec, "trials": [*trials, trial.name]})
    return {"TrialComponentArn": _arn(COMPONENT, component), "TrialArn": _arn(TRIAL, trial)}


def disassociate(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        component = get(ctx, COMPONENT, p["TrialComponentName"])
        trial = get(ctx, TRIAL, p["TrialName"])
        trials = list(component.spec.get("trials", []))
        if trial.name not in trials:
            raise ApiError("ResourceNotFound", f"Trial component '{component.spec['name']}' is "
                           f"not associated with trial '{trial.spec['name']}'.")
        trials.remove(trial.name)
        ctx.store.update_resource(COMPONENT, component.name,
                                  spec={**component.spec, "trials": trials})
    return {"TrialComponentArn": _arn(COMPONENT, component), "TrialArn": _arn(TRIAL, trial)}


OPERATIONS = {
    "CreateExperiment": create_experiment, "DescribeExperiment": describe_experiment,
    "ListExperiments": list_experiments, "UpdateExperiment": update_experiment,
    "DeleteExperiment": delete_experiment,
    "CreateTrial": create_trial, "DescribeTrial": describe_trial, "ListTrials": list_trials,
    "UpdateTrial": update_trial, "DeleteTrial": delete_trial,
    "CreateTrialComponent": create_component, "DescribeTrialComponent": describe_component,
    "ListTrialComponents": list_components, "UpdateTrialComponent": update_component,
    "DeleteTrialComponent": delete_component,
    "AssociateTrialComponent": associate, "DisassociateTrialComponent": disassociate,
}


# -- for the Studio ---------------------------------------------------------------------
def components_in(ctx: ApiContext, experiment: str) -> list:
    """The components of an experiment's trials (each once), oldest first."""
    trials = {t.name for t in trials_of(ctx, experiment)}
    return [r for r in rows(ctx, COMPONENT) if trials & set(r.spec.get("trials", []))]


def metric_points(ctx: ApiContext, row: Any, metric: str) -> list[tuple[float, float]]:
    """A component's values of `metric` as (step, value), by step: the points BatchPutMetrics
    stored (their position when they carry no step), or a training job's curve."""
    logged = find(ctx, METRICS, row.spec["name"])
    kept = ((logged.spec.get("metrics") or {}) if logged else {}).get(metric)
    if kept is not None:
        ordered = metric_series.ordered(kept)
        return [(float(p[1]) if p[1] is not None else float(i), float(p[2]))
                for i, p in enumerate(ordered)]
    job = row.spec.get("training_job")
    if job:
        from tabpilot.api import experiment_jobs

        return [(float(i), v) for i, v in enumerate(experiment_jobs.curves(ctx, job)
                                                      .get(metric, []))]
    return []
