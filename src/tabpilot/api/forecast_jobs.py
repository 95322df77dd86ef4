"""CreateAutoMLJobV2 with a TimeSeriesForecastingJobConfig: a forecasting job (forecast/).

`api/jobs.py` hands a request whose AutoMLProblemTypeConfig is a forecasting one here:
the config becomes a `ForecastRequest` (one rule, one message, as the CLI's), the job row
is made at once (Describe answers from the moment Create returns) and a worker process
(`api/worker.py`) runs `forecast.job.fit` adopting it. Describe and ListCandidates read
the rows through `jobs/views.py`, which shapes a forecasting job as Autopilot does.

HolidayConfig's country gives the LightGBM candidate each period's public holidays (the
`holidays` package, offline). Known-in-advance covariates are the FeatureSpecificationS3Uri
file's `FeatureAttributeNames` (its FeatureDataTypes `categorical` ones categorical, the
others numeric unless their values are not numbers); without that file, the columns other than
the target that Transformations.Filling or .Aggregation name (tabpilot does not turn every
other column into a covariate unasked: each one must then be sent for the horizon). What
is refused, each with one ValidationException line rather than silently ignored: a filling
key or method Autopilot does not have, two fill values for one column, a text or
datetime covariate type, and algorithms tabpilot does not have (`arima`, `ets` and `npts` map onto
its AutoARIMA, AutoETS and NPTS).
"""

from __future__ import annotations

import time
from typing import Any

from tabpilot.api.context import ApiContext
from tabpilot.api.shapes import ApiError, validation_error
from tabpilot.errors import TabpilotError
from tabpilot.forecast.request import ForecastRequest
from tabpilot.jobs import status as st
from tabpilot.jobs.arns import arn

CONFIG = "TimeSeriesForecastingJobConfig"
PROBLEM_TYPE = "TimeSeriesForecasting"
# Autopilot's forecasting algorithms -> tabpilot's candidates (those it has)
# (cnn-qr, deepar and prophet need torch or Stan). SeasonalNaive, the baseline every
# candidate is measured against, always runs.
ALGORITHMS = {"arima": ["AutoARIMA"], "ets": ["AutoETS"], "npts": ["NPTS"]}
FILL_KEYS = ("frontfill", "middlefill", "backfill")
COVARIATE_FILL_KEYS = (*FILL_KEYS, "futurefill")


def is_forecasting(p: dict[str, Any]) -> bool:
    return CONFIG in (p.get("AutoMLProblemTypeConfig") or {})


def forecast_request(p: dict[str, Any], ctx: ApiContext | None = None) -> ForecastRequest:
    """The ForecastRequest a V2 request asks for; ValidationException when it can't be.
    `ctx` reads FeatureSpecificationS3Uri (its location rules are the job's)."""
    config = p["AutoMLProblemTypeConfig"][CONFIG]
    series = config.get("TimeSeriesConfig") or {}
    target = series.get("TargetAttributeName")
    features, categorical = _feature_names(config.get("FeatureSpecificationS3Uri"), ctx)
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
    fields.update(_transformations(config.get("Transformations") or {}, target, features))
    if categorical:
        fields["covariate_categories"] = {c: [] for c in categorical if c != target}
    algorithms = _algorithms(config.get("CandidateGenerationConfig") or {})
    if algorithms is not None:
        fields["candidates"] = algorithms
    try:
        return ForecastRequest.build(**fields)
    except TabpilotError as exc:
        raise validation_error(f"{CONFIG}: {exc}") from None


def _feature_names(uri: str | None, ctx: ApiContext | None
                   ) -> tuple[list[str] | None, list[str]]:
    """The FeatureSpecification file's FeatureAttributeNames (the covariates; None without
    the file) and those it types categorical."""
    if not uri:
        return None, []
    from tabpilot.data.schema import load_feature_specification

    field = f"{CONFIG}.FeatureSpecificationS3Uri"
    if ctx is None:
        raise validation_error(f"{field} cannot be read here")
    try:
        names, types = load_feature_specification(ctx.locations.resolve(uri, field))
    except TabpilotError as exc:
        raise validation_error(f"{field}: {exc}") from None
    odd = sorted(c for c, kind in types.items() if kind not in ("numeric", "categorical"))
    if odd:
        raise validation_error(f"{field} types {odd[0]!r} as {types[odd[0]]}; tabpilot's "
                               "forecasting covariates are numeric or categorical")
    covariates = list(names or types)
    return covariates, sorted(c for c, kind in types.items()
                              if kind == "categorical" and c in covariates)


def _transformations(given: dict[str, Any], target: str | None,
                     features: list[str] | None = None) -> dict[str, Any]:
    """Filling and Aggregation of the target, and of the covariates (the specification's
    features, else the other columns these name), as ForecastRequest fields."""
    out: dict[str, Any] = {}
    named = sorted({*(given.get("Filling") or {}), *(given.get("Aggregation") or {})} - {target})
    covariates = features if features is not None else named
    stray = [c for c in named if c not in covariates]
    if stray:
        raise validation_error(f"Transformations names {stray[0]!r}, which is neither the target "
                               "nor a feature of FeatureSpecificationS3Uri; add it there or "
                               "leave its transformations out")
    filling = dict((given.get("Filling") or {}).get(target) or {})
    if filling:
        out["filling"] = _fill_rules(filling, FILL_KEYS, "the target")
    aggregation = (given.get("Aggregation") or {}).get(target)
    if aggregation:
        out["aggregation"] = aggregation
    if covariates:
        out["covariates"] = list(covariates)
        out["covariate_filling"] = {
            c: _fill_rules(dict(rules or {}), COVARIATE_FILL_KEYS, repr(c))
            for c, rules in (given.get("Filling") or {}).items() if c != target}
        out["covariate_aggregation"] = {
            c: how for c, how in (given.get("Aggregation") or {}).items() if c != target}
    return out


def _fill_rules(filling: dict[str, Any], keys: tuple[str, ...], whose: str) -> dict[str, Any]:
    """Autopilot's `{"middlefill": "value", "middlefill_value": "2"}` as a Filling."""
    unknown = sorted(k for k in filling if k.removesuffix("_value") not in keys)
    if unknown:
        raise validation_error(f"Filling key {unknown[0]!r} is not for {whose}; use "
                               f"{', '.join(keys)} (and <key>_value)")
    values = {filling[k] for k in filling if k.endswith("_value")}
    if len(values) > 1:
        raise validation_error(f"tabpilot takes one fill value for {whose}; give the same "
                               "<key>_value to every filling that uses value")
    out = {k: v for k, v in filling.items() if not k.endswith("_value")}
    if values:
        try:
            out["value"] = float(values.pop())
        except ValueError:
            raise validation_error("a Filling <key>_value must be a number") from None
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
    request = forecast_request(p, ctx)
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
        request = forecast_request(p, ctx)
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
