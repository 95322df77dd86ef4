"""SageMaker's `Search` over experiments, trials, trial components and training jobs: the
call the SDK's `ExperimentAnalytics` and `Run` make (Parents.ExperimentName,
TrialComponentName + Parents.TrialName).

Each resource's records are built as their Describe answers plus what Search adds (Tags,
a trial's components, a component's Parents and source job, a training job's `Metrics.<name>`
from its final metrics), filtered by `experiments/search.py`, sorted by any property path
(`SortBy`, default LastModifiedTime, Descending) and paged by NextToken (MaxResults 10 by
default, at most 100). A filter on a property the resource's records do not have is one
ValidationException line naming those it has. Other resources (Endpoint, Model, ...) are
refused with the list of those searched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tabpilot.api import experiments as ex
from tabpilot.api import training
from tabpilot.api.context import ApiContext
from tabpilot.api.paging import page
from tabpilot.api.shapes import ApiError, service, validation_error
from tabpilot.errors import ConfigError
from tabpilot.experiments import search as expressions

# Search's Resource -> (the SearchRecord member, the botocore shape of its record)
RESOURCES = {"Experiment": ("Experiment", "Experiment"),
             "ExperimentTrial": ("Trial", "Trial"),
             "ExperimentTrialComponent": ("TrialComponent", "TrialComponent"),
             "TrainingJob": ("TrainingJob", "TrainingJob")}
EXTRA_PROPERTIES = {"TrainingJob": {"Metrics"}}  # SageMaker's `Metrics.<name>` of a job


def _experiments(ctx: ApiContext) -> list[dict[str, Any]]:
    return [ex.experiment_record(r) for r in ex.rows(ctx, ex.EXPERIMENT)]


def _trials(ctx: ApiContext) -> list[dict[str, Any]]:
    return [ex.trial_record(ctx, r, components=True) for r in ex.rows(ctx, ex.TRIAL)]


def _components(ctx: ApiContext) -> list[dict[str, Any]]:
    return [ex.component_record(ctx, r, search=True) for r in ex.rows(ctx, ex.COMPONENT)]


def _training_jobs(ctx: ApiContext) -> list[dict[str, Any]]:
    out = []
    for row in ctx.store.list_resources(training.KIND):
        try:
            record = training.describe(ctx, {"TrainingJobName": row.name})
        except ApiError:  # removed between the listing and now
            continue
        record["Tags"] = row.spec["request"].get("Tags") or []
        out.append(record)
    return out


def view(record: dict[str, Any]) -> dict[str, Any]:
    """The record as filters read it: metrics by name (`Metrics.<name>`: a component's
    summary, a training job's final value) and tags by key (`Tags.<key>`)."""
    out = dict(record)
    if "FinalMetricDataList" in record:
        out["Metrics"] = {m["MetricName"]: {"Value": m["Value"]}
                          for m in record["FinalMetricDataList"]}
    elif isinstance(record.get("Metrics"), list):
        out["Metrics"] = {m["MetricName"]: m for m in record["Metrics"]}
    out["Tags"] = {t["Key"]: t["Value"] for t in record.get("Tags") or []}
    return out


BUILDERS: dict[str, Callable[[ApiContext], list[dict[str, Any]]]] = {
    "Experiment": _experiments, "ExperimentTrial": _trials,
    "ExperimentTrialComponent": _components, "TrainingJob": _training_jobs}


def properties(resource: str) -> set[str]:
    """The top-level properties a filter on `resource` may name: its record's members."""
    shape = service().shape_for(RESOURCES[resource][1])
    return set(shape.members) | EXTRA_PROPERTIES.get(resource, set())


def search(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    resource = p["Resource"]
    if resource not in RESOURCES:
        raise validation_error(f"tabpilot searches Resource {', '.join(RESOURCES)}; "
                               f"got {resource}")
    if p.get("CrossAccountFilterOption") == "CrossAccount" or p.get("VisibilityConditions"):
        raise validation_error("CrossAccountFilterOption and VisibilityConditions are not "
                               "supported: a tabpilot server is one account")
    expression = p.get("SearchExpression") or {}
    sort_by = p.get("SortBy", "LastModifiedTime")
    try:
        expressions.check({**expression, "SubExpressions": [
            *expression.get("SubExpressions", []),
            {"Filters": [{"Name": sort_by, "Operator": "Exists"}]}]},
            properties(resource), resource)
        kept = [(r, v) for r, v in ((r, view(r)) for r in BUILDERS[resource](ctx))
                if expressions.matches(v, expression)]
    except ConfigError as exc:
        raise validation_error(str(exc)) from None
    chosen, token = page(kept, {**p, "SortBy": sort_by},
                         {sort_by: lambda pair: expressions.sort_key(pair[1], sort_by)}, sort_by)
    member = RESOURCES[resource][0]
    return {"Results": [{member: r} for r, _ in chosen], "NextToken": token,
            "TotalHits": {"Value": len(kept), "Relation": "EqualTo"}}


OPERATIONS = {"Search": search}
