"""CreateAutoMLJobV2 with a TimeSeriesForecastingJobConfig: a forecasting job (forecast/).

`api/jobs.py` hands a request whose AutoMLProblemTypeConfig is a forecasting one here:
the config becomes a `ForecastRequest` (one rule, one message, as the CLI's), the job row
is made at once (Describe answers from the moment Create returns) and a worker process
(`api/worker.py`) runs `forecast.job.fit` adopting it. Describe and ListCandidates read
the rows through `jobs/views.py`, which shapes a forecasting job as Autopilot does.

HolidayConfig's country gives the LightGBM candidate each period's public holidays (the
`holidays` package, offline). What is refused, each with one ValidationException line
rather than silently ignored: filling or aggregation of columns other than the target
(tabpilot forecasts without covariates), FeatureSpecificationS3Uri, and algorithms
tabpilot does not have (`arima` and `ets` map onto its AutoARIMA and AutoETS).
"""

from __future__ import annotations

import time
from typing import Any

from tabpilot.api.context import ApiContext
from tabpilot.api.shapes import ApiError, validation_error
from tabpilot.errors import TabpilotError
from tabpilot.forecast.request import ForecastRequest
from tabpilot.jobs import status as st
from tabpilot.jobs.views import arn

CONFIG = "TimeSeriesForecastingJobConfig"
PROBLEM_TYPE = "TimeSeriesForecasting"
# Autopilot's forecasting algorithms -> tabpilot's candidates (those it has)
# (cnn-qr, deepar and prophet need torch or Stan; npts is not built yet). SeasonalNaive,
# the baseline every candidate is measured against, always runs.
ALGORITHMS = {"arima": ["AutoARIMA"], "ets": ["AutoETS"]}
FILL_KEYS = ("frontfill", "middlefill", "backfill")


def is_forecasting(p: dict[str, Any]) -> bool:
    return CONFIG in (p.get("AutoMLProblemTypeConfig") or {})


def forecast_request(p: dict[str, Any]) -> ForecastRequest:
    """The ForecastRequest a V2 request asks for; ValidationException when it can't be."""
    config = p["AutoMLProblemTypeConfig"][CONFIG]
    series = config.get("TimeSeriesConfig") or {}
    target = series.get("TargetAttributeName")
    if config.get("FeatureSpecificationS3Uri"):
        raise validation_error(f"{CONFIG}.FeatureSpecificationS3Uri is not supported by "
                               "tabpilot yet; leave it out")
    fields: dict[str, Any] = dict(
        name=p["AutoMLJobName"], target=target,
        timestamp=series.get("TimestampAttributeName"),
        item_id=series.get("ItemIdentifierAttributeName"),
        grouping=list(series.get("GroupingAttributeNames") or []),
        frequency=config.get("ForecastFrequency"), horizon=config.get("ForecastHorizon"))
    if config.get("ForecastQuantiles"):
        fields["quantiles"] = config["ForecastQuantiles"]
    metric = (p.get("AutoMLJobObjective") or {}).get("MetricName")
    if metric is not None:
        fields["objective"] = metric
    limit = (config.get("CompletionCriteria") or {}).get("MaxAutoMLJobRuntimeInSeconds")
    if limit is not None:
        fields["time_limit"] = float(limit)
    holidays = config.get("HolidayConfig") or []
    if len(holidays) > 1:
        raise validation_error("HolidayConfig takes one country; give one CountryCode")
    if holidays:
        fields["holiday_country"] = holidays[0].get("CountryCode")
    fields.update(_transformations(config.get("Transformations") or {}, target))
    algorithms = _algorithms(config.get("CandidateGenerationConfig") or {})
    if algorithms is not None:
        fields["candidates"] = algorithms
    try:
        return ForecastRequest.build(**fields)
    except TabpilotError as exc:
        raise validation_error(f"{CONFIG}: {exc}") from None


def _transformations(given: dict[str, Any], target: str | None) -> dict[str, Any]:
    """Filling and Aggregation, of the target only."""
    out: dict[str, Any] = {}
    for kind in ("Filling", "Aggregation"):
        others = sorted(set(given.get(kind) or {}) - {target})
        if others:
            raise validation_error(f"Transformations.{kind} names {others[0]!r}; tabpilot "
                                   f"forecasts the target alone (no covariates yet), so only "
                                   f"the target {target!r} may be named")
    filling = dict((given.get("Filling") or {}).get(target) or {})
    if filling:
        unknown = sorted(k for k in filling if k.removesuffix("_value") not in FILL_KEYS)
        if unknown:
            raise validation_error(f"Filling key {unknown[0]!r} is not for the target; use "
                                   "frontfill, middlefill, backfill (and <key>_value)")
        values = {filling[k] for k in filling if k.endswith("_value")}
        if len(values) > 1:
            raise validation_error("tabpilot takes one fill value for the target; give the "
                                   "same <key>_value to every filling that uses value")
        out["filling"] = {k: v for k, v in filling.items() if not k.endswith("_value")}
        if values:
            try:
                out["filling"]["value"] = float(values.pop())
            except ValueError:
                raise validation_error("a Filling <key>_value must be a number") from None
    aggregation = (given.get("Aggregation") or {}).get(target)
    if aggregation:
        out["aggregation"] = aggregation
    return out


def _algorithms(generation: dict[str, Any]) -> list[str] | None:
    chosen: list[str] = []
    for group in generation.get("AlgorithmsConfig") or []:
        for name in group.get("AutoMLAlgorithms", []):
            if name not in ALGORITHMS:
                raise validation_error(f"algorithm {name} is not one tabpilot forecasts with; "
                                       f"use any of {', '.join(ALGORITHMS)}, or leave "
                                       "AlgorithmsConfig out for every candidate it has")
            chosen += [a for a in ALGORITHMS[name] if a not in chosen]
    return chosen or None


def create(ctx: ApiContext, p: dict[str, Any], version: int, training: str) -> dict[str, Any]:
    """Check the request, make the job row and the resource, start the worker."""
    from tabpilot.api.jobs import KIND

    name = p["AutoMLJobName"]
    request = forecast_request(p)
    try:
        ctx.store.create_job(
            name=name, status=st.IN_PROGRESS, secondary_status=st.STARTING,
            target=request.target, input_uri=training, mode="auto",
            problem_type=PROBLEM_TYPE, metric=request.objective,
            request=request.model_dump(mode="json"), job_dir=str(ctx.workspace / "jobs" / name),
            pid=None)
    except TabpilotError:
        raise ApiError("ResourceInUse", f"Job with name {name} already exists.") from None
    if ctx.store.find_resource(KIND, name):  # left by a job deleted outside the API
        ctx.store.delete_resource(KIND, name)
    ctx.store.add_resource(KIND, name, {"version": version, "request": p, "published": False})
    ctx.store.update_job(name, pid=ctx.launch("job", name))
    return {"AutoMLJobArn": arn("automl-job", name)}


def run(ctx: ApiContext, name: str, p: dict[str, Any], training: str) -> None:
    """The worker's body: read the table, fit adopting the row; a failure is recorded."""
    from tabpilot.data import read_table
    from tabpilot.forecast.job import fit

    store = ctx.store
    try:
        request = forecast_request(p)
        source = ctx.locations.read(training, None, "AutoMLJobInputDataConfig")
        table = read_table(source) if isinstance(source, str) else source
        fit(table, request, ctx.workspace, store=store, input_uri=training, adopt=True)
    except Exception as exc:  # fit records its own failures; this is one before it began
        if store.get_job(name).status in st.ACTIVE:
            text = str(exc).strip().splitlines()
            store.update_job(name, status=st.FAILED, secondary_status=st.FAILED,
                             failure_reason=(text[0] if text else type(exc).__name__)[:1000],
                             ended=time.time())


def containers(candidate: dict[str, Any], image: str) -> None:
    """A forecasting candidate's inference container, as Autopilot lists it."""
    for container in candidate.get("InferenceContainers", []):
        container["Image"] = image
        # the answer is always the mean and every quantile: no output keys to choose
        container["Environment"] = {"SAGEMAKER_INFERENCE_INPUT": "text/csv"}


def describe(view: dict[str, Any], spec: dict[str, Any], image: str) -> dict[str, Any]:
    """DescribeAutoMLJobV2 of a forecasting job: the stored view, with the request as it
    was asked (its locations, role, the config's own spelling) over the resolved one."""
    req = spec.get("request", {})
    if view.get("BestCandidate"):
        containers(view["BestCandidate"], image)
    for key in ("AutoMLJobInputDataConfig", "OutputDataConfig", "SecurityConfig",
                "DataSplitConfig", "AutoMLJobObjective"):
        if key in req:
            view[key] = req[key]
    view["RoleArn"] = req.get("RoleArn", "arn:aws:iam::000000000000:role/tabpilot")
    asked = (req.get("AutoMLProblemTypeConfig") or {}).get(CONFIG)
    if asked:
        resolved = view["AutoMLProblemTypeConfig"][CONFIG]
        view["AutoMLProblemTypeConfig"] = {CONFIG: {**resolved, **asked}}
    if spec.get("endpoint"):
        view["ModelDeployResult"] = {"EndpointName": spec["endpoint"]}
    return view
