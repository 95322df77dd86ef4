"""What the Studio's endpoints and batch-transform pages do, through the SageMaker facade.

Deploy is CreateModel + CreateEndpointConfig + CreateEndpoint; swap is CreateModel +
CreateEndpointConfig + UpdateEndpoint (the server loads the new model completely, then
swaps it in with one assignment: no request fails); undeploy is DeleteEndpoint; a batch
transform is CreateModel + CreateTransformJob, run by `api/worker.py run_transform`. Each
goes through `api.app.call`, so it is validated against botocore's shapes and confined to
the allowed roots exactly as a boto3 caller's request is: the Studio has no deploy or
transform of its own. The models and configs it makes carry the tag `CreatedBy=tabpilot-studio`
and the job and candidate they came from, so a page can say which model an endpoint serves
and undeploy can tidy what deploy made.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabpilot import names
from tabpilot.api.hosting import CONFIG, ENDPOINT, MODEL, TRANSFORM
from tabpilot.api.shapes import ApiError
from tabpilot.errors import NotFoundError, TabpilotError
from tabpilot.serving.capture import DEFAULT_VARIANT

if TYPE_CHECKING:
    from tabpilot.api.context import ApiContext

STUDIO_TAG = {"Key": "CreatedBy", "Value": "tabpilot-studio"}
# the facade writes no output into the workspace's own `capture/` (api/locations.py), so
# the Studio's endpoints capture beside it, where `tabpilot monitor` finds them through
# the endpoint's row
CAPTURE_FOLDER = "datacapture"
TRANSFORM_FOLDER = "transforms"
UPLOAD_FOLDER = "uploads"
INSTANCE = "ml.m5.large"  # SageMaker requires one; tabpilot serves on this machine


class StudioError(TabpilotError):
    """A Studio request the facade refused, in the facade's words (a 4xx for the page)."""


def call(ctx: ApiContext, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    from tabpilot.api.app import call as facade

    try:
        return facade(ctx, operation, params)
    except ApiError as exc:
        raise StudioError(exc.message) from None


def _suffix() -> str:
    return secrets.token_hex(3)


def _short(name: str, room: int) -> str:
    """`name` cut to `room` characters without leaving a trailing dash (names.py's rule)."""
    return name[:room].rstrip("-")


def create_model(ctx: ApiContext, job: str, candidate: str, prefix: str,
                 use: str = "endpoint") -> str:
    """A SageMaker model for a job's candidate; returns its name."""
    names.check(job, "job")
    names.check(candidate, "candidate")
    row = ctx.store.get_candidate(job, candidate)
    if not row.artifact_dir:
        raise NotFoundError(f"candidate {candidate!r} of job {job!r} has no packaged model "
                            f"(status {row.status}); pick a candidate with a model")
    name = f"{_short(prefix, 48)}-{_suffix()}"
    call(ctx, "CreateModel", {
        "ModelName": name, "PrimaryContainer": {"ModelDataUrl": row.artifact_dir},
        "Tags": [STUDIO_TAG, {"Key": "Job", "Value": job},
                 {"Key": "Candidate", "Value": candidate}, {"Key": "Use", "Value": use}]})
    return name


def _config(ctx: ApiContext, endpoint: str, model: str, capture_percent: float) -> str:
    name = f"{_short(endpoint, 48)}-{_suffix()}"
    params: dict[str, Any] = {
        "EndpointConfigName": name, "Tags": [STUDIO_TAG],
        "ProductionVariants": [{"VariantName": DEFAULT_VARIANT, "ModelName": model,
                                "InitialInstanceCount": 1, "InstanceType": INSTANCE}]}
    if capture_percent > 0:
        params["DataCaptureConfig"] = {
            "EnableCapture": True, "InitialSamplingPercentage": int(round(capture_percent)),
            "DestinationS3Uri": str(ctx.workspace / CAPTURE_FOLDER),
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}
    call(ctx, "CreateEndpointConfig", params)
    return name


def _capture_percent(value: float) -> float:
    if not 0 <= value <= 100:
        raise StudioError(f"capture percent must be between 0 and 100, got {value:g}")
    return value


def deploy(ctx: ApiContext, endpoint: str, job: str, candidate: str,
           capture_percent: float = 0.0) -> str:
    """A new endpoint serving the candidate; returns its name."""
    names.check(endpoint, "endpoint")
    _capture_percent(capture_percent)
    if _row(ctx, endpoint) is not None:
        raise StudioError(f"endpoint {endpoint!r} exists already; swap its model instead, "
                          "or choose another name")
    model = create_model(ctx, job, candidate, endpoint)
    config = _config(ctx, endpoint, model, capture_percent)
    call(ctx, "CreateEndpoint", {"EndpointName": endpoint, "EndpointConfigName": config,
                                 "Tags": [STUDIO_TAG]})
    return endpoint


def swap(ctx: ApiContext, endpoint: str, job: str, candidate: str) -> None:
    """Point a running endpoint at another candidate (UpdateEndpoint), keeping its data
    capture as it is."""
    names.check(endpoint, "endpoint")
    row = _row(ctx, endpoint)
    if row is None:
        raise NotFoundError(f"no endpoint named {endpoint!r}; deploy it first")
    model = create_model(ctx, job, candidate, endpoint)
    config = _config(ctx, endpoint, model, row.capture_percent)
    old = _studio_config(ctx, endpoint)
    call(ctx, "UpdateEndpoint", {"EndpointName": endpoint, "EndpointConfigName": config})
    if old is not None:
        _tidy(ctx, old)


def undeploy(ctx: ApiContext, endpoint: str) -> None:
    """DeleteEndpoint; the config and model the Studio made for it go too (those a boto3
    caller made are theirs to delete)."""
    names.check(endpoint, "endpoint")
    config = _studio_config(ctx, endpoint)
    call(ctx, "DeleteEndpoint", {"EndpointName": endpoint})
    if config is not None:
        _tidy(ctx, config)


def _studio_config(ctx: ApiContext, endpoint: str) -> str | None:
    resource = ctx.store.find_resource(ENDPOINT, endpoint)
    config = (resource.spec or {}).get("EndpointConfigName") if resource else None
    row = ctx.store.find_resource(CONFIG, config) if config else None
    return config if row is not None and _made_here(row.spec["request"]) else None


def _made_here(request: dict[str, Any]) -> bool:
    return STUDIO_TAG in (request.get("Tags") or [])


def _tidy(ctx: ApiContext, config: str) -> None:
    """Delete a Studio-made config and its Studio-made model, unless still in use."""
    in_use = {(r.spec or {}).get("EndpointConfigName") for r in ctx.store.list_resources(ENDPOINT)}
    if config in in_use:
        return
    request = ctx.store.get_resource(CONFIG, config).spec["request"]
    call(ctx, "DeleteEndpointConfig", {"EndpointConfigName": config})
    for variant in request["ProductionVariants"]:
        model = ctx.store.find_resource(MODEL, variant["ModelName"])
        if model is not None and _made_here(model.spec["request"]) and \
                not _model_in_use(ctx, model.name):
            call(ctx, "DeleteModel", {"ModelName": model.name})


def _model_in_use(ctx: ApiContext, model: str) -> bool:
    configs = (r.spec["request"] for r in ctx.store.list_resources(CONFIG))
    transforms = (r.spec["request"] for r in ctx.store.list_resources(TRANSFORM)
                  if r.status == "InProgress")
    return any(v.get("ModelName") == model for c in configs for v in c["ProductionVariants"]) \
        or any(t["ModelName"] == model for t in transforms)


def _row(ctx: ApiContext, endpoint: str):
    try:
        return ctx.store.get_endpoint(endpoint)
    except NotFoundError:
        return None


# -- what the pages show --------------------------------------------------------------
@dataclass
class EndpointView:
    name: str
    job: str | None
    candidate: str | None
    model_dir: str
    status: str
    failure: str | None
    created: float
    since: float  # when the current model went in
    version: int
    capture_percent: float
    capture_dir: Path


def source_of(ctx: ApiContext, model_dir: str) -> tuple[str | None, str | None]:
    """(job, candidate) of a model directory inside the workspace's jobs, else (None, None)."""
    path = Path(model_dir)
    try:
        parts = path.resolve().relative_to((ctx.workspace / "jobs").resolve()).parts
    except ValueError:
        return None, None
    if len(parts) >= 4 and parts[1] == "candidates":
        return parts[0], parts[2]
    return None, None


def endpoint_views(ctx: ApiContext) -> list[EndpointView]:
    return [_view(ctx, row) for row in ctx.store.list_endpoints()]


def endpoint_view(ctx: ApiContext, name: str) -> EndpointView:
    names.check(name, "endpoint")
    return _view(ctx, ctx.store.get_endpoint(name))


def _view(ctx: ApiContext, row) -> EndpointView:
    described = call(ctx, "DescribeEndpoint", {"EndpointName": row.name})
    job, candidate = source_of(ctx, row.model_dir)
    capture_root = Path(row.capture_dir) if row.capture_dir else ctx.workspace / "capture"
    return EndpointView(row.name, row.job or job, row.candidate if job is None else candidate,
                        row.model_dir, described["EndpointStatus"],
                        described.get("FailureReason"), row.created, row.modified,
                        row.version, row.capture_percent, capture_root / row.name)


def deployable(ctx: ApiContext) -> list[dict[str, Any]]:
    """Jobs with packaged candidates, newest first, each candidate with its validation
    objective, the job's chosen one first: the choices of the deploy and swap forms."""
    out = []
    for job in sorted(ctx.store.list_jobs(), key=lambda j: j.created or 0, reverse=True):
        rows = [c for c in ctx.store.list_candidates(job.name) if c.artifact_dir]
        if not rows:
            continue
        metrics = ctx.store.metrics(job.name)
        rows.sort(key=lambda c: (c.name != job.best_candidate, c.name))
        out.append({"job": job.name, "metric": job.metric, "best": job.best_candidate,
                    "candidates": [{"name": c.name, "score": metrics.get(c.name, {}).get(
                        "validation", {}).get(job.metric)} for c in rows]})
    return out


# -- batch transform --------------------------------------------------------------------
def start_transform(ctx: ApiContext, job: str, candidate: str, source: str,
                    output: str | None = None, accept: str = "text/csv",
                    name: str | None = None) -> str:
    """CreateTransformJob on `source` (a file or folder under the allowed roots); the
    output goes to `output`, default `<workspace>/transforms/<name>/`. Returns its name."""
    name = name or f"{_short(job, 40)}-{time.strftime('%m%d%H%M%S')}-{_suffix()}"
    names.check(name, "transform job")
    if not source.strip():
        raise StudioError("give the file to score: a path under the allowed data roots, "
                          "or upload one")
    model = _batch_model(ctx, job, candidate)
    out = output or str(ctx.workspace / TRANSFORM_FOLDER / name)
    call(ctx, "CreateTransformJob", {
        "TransformJobName": name, "ModelName": model,
        "TransformInput": {"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": source}}, "ContentType": "text/csv"},
        "TransformOutput": {"S3OutputPath": out, "Accept": accept},
        "TransformResources": {"InstanceType": INSTANCE, "InstanceCount": 1},
        "Tags": [STUDIO_TAG, {"Key": "Job", "Value": job},
                 {"Key": "Candidate", "Value": candidate}]})
    return name


def _batch_model(ctx: ApiContext, job: str, candidate: str) -> str:
    """The Studio's model for a candidate's transforms: made once, then reused."""
    for row in ctx.store.list_resources(MODEL):
        request = row.spec["request"]
        tags = {t["Key"]: t["Value"] for t in request.get("Tags") or []}
        if _made_here(request) and tags.get("Job") == job and \
                tags.get("Candidate") == candidate and tags.get("Use") == "batch":
            return row.name
    return create_model(ctx, job, candidate, f"{_short(job, 40)}-batch", use="batch")


@dataclass
class TransformView:
    name: str
    status: str
    failure: str | None
    job: str | None
    candidate: str | None
    source: str
    output: str
    created: float
    started: float | None
    ended: float | None
    files_total: int | None
    files_done: int
    bytes_written: int
    rows_written: int | None

    @property
    def elapsed(self) -> float | None:
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()} | {"elapsed": self.elapsed}


COUNT_LINES_UP_TO = 64 * 2**20  # rows are counted in outputs up to this size; bytes beyond


def transform_views(ctx: ApiContext) -> list[TransformView]:
    rows = sorted(ctx.store.list_resources(TRANSFORM), key=lambda r: r.created, reverse=True)
    return [_transform(ctx, r) for r in rows]


def transform_view(ctx: ApiContext, name: str) -> TransformView:
    row = ctx.store.find_resource(TRANSFORM, name)
    if row is None:
        raise NotFoundError(f"no batch transform named {name!r}")
    return _transform(ctx, row)


def _transform(ctx: ApiContext, row) -> TransformView:
    p = row.spec["request"]
    tags = {t["Key"]: t["Value"] for t in p.get("Tags") or []}
    source = p["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    output = p["TransformOutput"]["S3OutputPath"]
    total, done, size, lines = _progress(ctx, source, output)
    return TransformView(row.name, row.status or "InProgress", row.failure_reason,
                         tags.get("Job"), tags.get("Candidate"), source, output, row.created,
                         row.spec.get("started"), row.ended, total, done, size, lines)


def output_files(ctx: ApiContext, output: str) -> list[Path]:
    """The finished `.out` files in a local transform's output folder (for download)."""
    try:
        where = ctx.locations.resolve(output, "S3OutputPath")
    except TabpilotError:
        return []
    folder = Path(where)
    if "://" in where or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(".out"))


def _progress(ctx: ApiContext, source: str, output: str
              ) -> tuple[int | None, int, int, int | None]:
    """(input files, files scored, bytes written, rows written) of a local transform:
    outputs are `<file>.out` once complete and `.<file>.out.partial` while being written
    (serving/batch.py)."""
    try:
        total: int | None = len(ctx.locations.table_files(source, "S3Uri"))
    except TabpilotError:
        total = None
    try:
        where = ctx.locations.resolve(output, "S3OutputPath")
    except TabpilotError:
        return total, 0, 0, None
    folder = Path(where)
    if "://" in where or not folder.is_dir():
        return total, 0, 0, None
    written = [p for p in folder.iterdir() if p.is_file() and
               (p.name.endswith(".out") or p.name.endswith(".out.partial"))]
    done = sum(1 for p in written if p.name.endswith(".out"))
    size = sum(p.stat().st_size for p in written)
    lines: int | None = None
    if size <= COUNT_LINES_UP_TO:
        lines = 0
        for p in written:
            with open(p, "rb") as f:
                lines += sum(chunk.count(b"\n") for chunk in iter(lambda f=f: f.read(1 << 20), b""))
    return total, done, size, lines
