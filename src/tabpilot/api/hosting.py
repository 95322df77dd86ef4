"""Models, endpoint configs, endpoints and transform jobs, as SageMaker's hosting API has them.

A model is a tabpilot model directory behind a name (its container's ModelDataUrl); an
endpoint config names the model to serve and the data capture; an endpoint is a row in the
store's endpoints table, which `tabpilot serve` follows, so CreateEndpoint and
UpdateEndpoint take effect within a second and swap models atomically. A transform job runs
`serving.batch.transform` in a worker process.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import fsspec

from tabpilot.api.context import ApiContext
from tabpilot.api.locations import join
from tabpilot.api.paging import in_time_window, page
from tabpilot.api.shapes import ApiError, validation_error
from tabpilot.artifacts import verify
from tabpilot.artifacts.package import is_model_directory
from tabpilot.artifacts.store import for_workspace as artifact_store
from tabpilot.artifacts.store import key_of, local_copy
from tabpilot.errors import NotFoundError, TabpilotError
from tabpilot.jobs.arns import arn
from tabpilot.serving.codec import INFERENCE_KEYS
from tabpilot.training import images

MODEL, CONFIG, ENDPOINT, TRANSFORM = "model", "endpoint-config", "endpoint", "transform-job"
INPUT_FIELD = "TransformInput.DataSource.S3DataSource.S3Uri"
OUTPUT_FIELD = "TransformOutput.S3OutputPath"
CAPTURE_FIELD = "DataCaptureConfig.DestinationS3Uri"


def _missing(kind: str, name: str) -> ApiError:
    label = {MODEL: "model", CONFIG: "endpoint configuration", ENDPOINT: "endpoint"}[kind]
    return validation_error(f'Could not find {label} "{arn(kind, name)}".')


def _get(ctx: ApiContext, kind: str, name: str):
    row = ctx.store.find_resource(kind, name)
    if row is None:
        raise _missing(kind, name)
    return row


def _add(ctx: ApiContext, kind: str, name: str, spec: dict[str, Any], status: str | None = None):
    label = {MODEL: "model", CONFIG: "endpoint configuration"}.get(kind, kind)
    if ctx.store.find_resource(kind, name) is not None:
        raise validation_error(f'Cannot create already existing {label} "{arn(kind, name)}".')
    return ctx.store.add_resource(kind, name, spec, status)


# -- models -----------------------------------------------------------------------------
def _model_container(p: dict[str, Any]) -> dict[str, Any]:
    containers = ([p["PrimaryContainer"]] if p.get("PrimaryContainer") else []) + \
        list(p.get("Containers", []))
    with_data = [c for c in containers if c.get("ModelDataUrl")]
    if not with_data:
        raise validation_error("the model needs a container with a ModelDataUrl: a tabpilot model "
                               "directory, e.g. a candidate's InferenceContainers[0]")
    return with_data[-1]


def create_model(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["ModelName"]
    if ctx.store.find_resource(MODEL, name) is not None:
        raise validation_error(f'Cannot create already existing model "{arn(MODEL, name)}".')
    container = _model_container(p)
    url = container["ModelDataUrl"]
    builtin = images.parse(container.get("Image") or "")
    if builtin is not None:  # a built-in algorithm's model.tar.gz (api/training.py)
        local = builtin_model(ctx, url, builtin.algorithm, ctx.workspace / "models" / name)
        _add(ctx, MODEL, name, {"request": p, "model_dir": str(local), "builtin": builtin.algorithm})
        return {"ModelArn": arn(MODEL, name)}
    local = _published_model(ctx, url) or \
        ctx.locations.fetch_model(url, ctx.workspace / "models" / name)
    try:
        verify(_shared(ctx, Path(local)))
    except TabpilotError as exc:
        raise validation_error(f"Could not find a tabpilot model at {url}: {exc}") from None
    keys = container.get("Environment", {}).get("SAGEMAKER_INFERENCE_OUTPUT")
    if keys and any(k.strip() not in INFERENCE_KEYS for k in keys.split(",")):
        raise validation_error(f"SAGEMAKER_INFERENCE_OUTPUT {keys!r}: use any of "
                               f"{', '.join(INFERENCE_KEYS)}")
    _add(ctx, MODEL, name, {"request": p, "model_dir": str(local), "output_keys": keys})
    return {"ModelArn": arn(MODEL, name)}


def builtin_model(ctx: ApiContext, url: str, algorithm: str, into: Path) -> Path:
    """A built-in algorithm's model.tar.gz unpacked into `into` and loaded once to check it.
    The archive must be a training job's own output or lie in a trusted model root, like
    any model; its files are read as XGBoost JSON/UBJSON or plain arrays, never unpickled."""
    import json
    import tempfile

    from tabpilot.api.training import local_artifact
    from tabpilot.training.inference import MARKER, load
    from tabpilot.training.job import unpack

    archive = local_artifact(ctx, url)
    with tempfile.TemporaryDirectory(prefix="tabpilot-model-") as scratch:
        if archive is None:
            archive = _trusted_file(ctx, url, Path(scratch) / "model.tar.gz")
        unpack(archive, into)
    (into / MARKER).write_text(json.dumps({"algorithm": algorithm, "source": url}))
    try:
        load(into)
    except TabpilotError as exc:
        raise validation_error(f"ModelDataUrl: {url} is no {algorithm} model: {exc}") from None
    return into


def _trusted_file(ctx: ApiContext, url: str, scratch: Path) -> Path:
    """The file at `url`, which must lie in a trusted model root; a remote one is
    downloaded to `scratch`."""
    import fsspec

    from tabpilot.roots import LocationError

    try:
        where = ctx.locations.model_roots.resolve(url, "ModelDataUrl")
    except LocationError:
        raise validation_error(
            f"ModelDataUrl: {url} is not in a trusted model root "
            f"({ctx.locations.model_roots.describe()}); start the server with "
            "--trust-model-root covering it, or use a training job's ModelArtifacts") from None
    fs, path = fsspec.core.url_to_fs(where)
    if not fs.isfile(path):
        raise validation_error(f"ModelDataUrl: {url} is no model.tar.gz file")
    if "://" not in where:
        return Path(where)
    fs.get(path, str(scratch))
    return scratch


def _shared(ctx: ApiContext, local: Path) -> Path:
    """The model as every server sharing the artifact store ($TABPILOT_ARTIFACTS) reads
    it: published first when this workspace holds it (fetched from ModelDataUrl, or a
    job's made before the store was set), then its verified copy. The default store is
    this workspace: the folder itself."""
    artifacts = artifact_store(ctx.workspace)
    key = key_of(local, ctx.workspace)
    if artifacts.in_place or key is None:
        return local
    if is_model_directory(local):
        verify(local)
        artifacts.ensure(local, key)
    return local_copy(local, ctx.workspace, artifacts)


def _published_model(ctx: ApiContext, url: str) -> Path | None:
    """The workspace's own copy of a model that a job published under its S3OutputPath (the
    ModelDataUrl DescribeAutoMLJob gives): the server wrote it, so it is trusted."""
    from tabpilot.api.jobs import KIND

    wanted = url.rstrip("/")
    for row in ctx.store.list_resources(KIND):
        if not row.spec.get("published") or not ctx.store.job_exists(row.name):
            continue
        remote = join(row.spec["request"]["OutputDataConfig"]["S3OutputPath"], row.name)
        if wanted.startswith(remote + "/"):
            job_dir = Path(ctx.store.get_job(row.name).job_dir)
            local = job_dir / wanted[len(remote) + 1:]
            return Path(ctx.locations.model_roots.resolve(str(local), "ModelDataUrl"))
    return None


def describe_model(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _get(ctx, MODEL, p["ModelName"])
    return {**row.spec["request"], "ModelArn": arn(MODEL, row.name), "CreationTime": row.created}


def delete_model(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    _get(ctx, MODEL, p["ModelName"])
    ctx.store.delete_resource(MODEL, p["ModelName"])
    return {}


# -- endpoint configs -------------------------------------------------------------------
def create_endpoint_config(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["EndpointConfigName"]
    for variant in p["ProductionVariants"]:
        if not variant.get("ModelName"):
            raise validation_error(f"production variant {variant['VariantName']} names no model")
        _get(ctx, MODEL, variant["ModelName"])
    capture = p.get("DataCaptureConfig")
    if capture:  # inside the allowed roots; a remote one gets the files by `upload_captures`
        ctx.locations.resolve_output(capture["DestinationS3Uri"], CAPTURE_FIELD)
    _add(ctx, CONFIG, name, {"request": p})
    return {"EndpointConfigArn": arn(CONFIG, name)}


def describe_endpoint_config(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _get(ctx, CONFIG, p["EndpointConfigName"])
    return {**row.spec["request"], "EndpointConfigArn": arn(CONFIG, row.name),
            "CreationTime": row.created}


def delete_endpoint_config(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    _get(ctx, CONFIG, p["EndpointConfigName"])
    ctx.store.delete_resource(CONFIG, p["EndpointConfigName"])
    return {}


# -- endpoints --------------------------------------------------------------------------
def _deploy(ctx: ApiContext, endpoint: str, config_name: str) -> None:
    config = _get(ctx, CONFIG, config_name).spec["request"]
    variant = config["ProductionVariants"][0]  # one variant is served; see the README
    model = _get(ctx, MODEL, variant["ModelName"]).spec
    capture = config.get("DataCaptureConfig") or {}
    on = capture and capture.get("EnableCapture", True)
    model_dir = Path(model["model_dir"])
    ctx.store.put_endpoint(
        endpoint, str(model_dir), job=None, candidate=model_dir.parent.name,
        capture_percent=float(capture.get("InitialSamplingPercentage", 0)) if on else 0.0,
        capture_dir=_local_capture(ctx, capture["DestinationS3Uri"]) if on else None,
        output_keys=model.get("output_keys"), variant=variant["VariantName"])
    resource = ctx.store.find_resource(ENDPOINT, endpoint)
    if resource is not None:  # kept with the endpoint: its config may be deleted first
        remote = capture["DestinationS3Uri"] if on and _local_capture(
            ctx, capture["DestinationS3Uri"]) is None else None
        ctx.store.update_resource(ENDPOINT, endpoint,
                                  spec={**resource.spec, "CaptureS3Uri": remote})


def create_endpoint(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["EndpointName"]
    if _endpoint_row(ctx, name) is not None:
        raise validation_error(f'Cannot create already existing endpoint "{arn(ENDPOINT, name)}".')
    _get(ctx, CONFIG, p["EndpointConfigName"])
    if ctx.store.find_resource(ENDPOINT, name) is not None:
        ctx.store.delete_resource(ENDPOINT, name)
    ctx.store.add_resource(ENDPOINT, name, {"EndpointConfigName": p["EndpointConfigName"],
                                            "Tags": p.get("Tags", [])})
    _deploy(ctx, name, p["EndpointConfigName"])
    return {"EndpointArn": arn(ENDPOINT, name)}


def update_endpoint(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["EndpointName"]
    if _endpoint_row(ctx, name) is None:
        raise _missing(ENDPOINT, name)
    _get(ctx, CONFIG, p["EndpointConfigName"])
    if ctx.store.find_resource(ENDPOINT, name) is None:
        ctx.store.add_resource(ENDPOINT, name, {})
    spec = ctx.store.get_resource(ENDPOINT, name).spec
    ctx.store.update_resource(ENDPOINT, name,
                              spec={**spec, "EndpointConfigName": p["EndpointConfigName"]})
    _deploy(ctx, name, p["EndpointConfigName"])
    return {"EndpointArn": arn(ENDPOINT, name)}


def _endpoint_row(ctx: ApiContext, name: str):
    try:
        return ctx.store.get_endpoint(name)
    except NotFoundError:
        return None


def _endpoint_status(ctx: ApiContext, row) -> tuple[str, str | None]:
    registry = ctx.registry
    if registry is None:
        return "InService", None
    live = registry.loaded(row.name)
    if live is not None and live.version == row.version:
        return "InService", None
    failed = registry.failures.get(row.name)
    if failed and failed[0] == row.version:
        return ("Failed" if live is None else "InService"), failed[1]
    return ("Creating" if live is None else "Updating"), None


def describe_endpoint(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _endpoint_row(ctx, p["EndpointName"])
    if row is None:
        raise _missing(ENDPOINT, p["EndpointName"])
    status, failure = _endpoint_status(ctx, row)
    resource = ctx.store.find_resource(ENDPOINT, row.name)  # none for a `tabpilot deploy`
    spec = resource.spec if resource is not None else {}
    out: dict[str, Any] = {
        "EndpointName": row.name, "EndpointArn": arn(ENDPOINT, row.name),
        "EndpointConfigName": spec.get("EndpointConfigName"),
        "EndpointStatus": status, "FailureReason": failure,
        "CreationTime": row.created, "LastModifiedTime": row.modified,
        "ProductionVariants": [{"VariantName": row.variant or "AllTraffic", "CurrentWeight": 1.0,
                                "DesiredWeight": 1.0, "CurrentInstanceCount": 1,
                                "DesiredInstanceCount": 1}],
    }
    if row.capture_percent > 0:
        out["DataCaptureConfig"] = {
            "EnableCapture": True, "CaptureStatus": "Started",
            "CurrentSamplingPercentage": int(row.capture_percent),
            "DestinationS3Uri": _remote_capture(ctx, row.name) or row.capture_dir
            or str(ctx.workspace / "capture"), "KmsKeyId": ""}
    return out


def _local_capture(ctx: ApiContext, uri: str) -> str | None:
    """Where an endpoint writes its captures as they arrive: the destination itself when it
    is local (or under --s3-root), else the workspace's `capture/` (None), from which
    `upload_captures` copies them to S3."""
    where = ctx.locations.resolve_output(uri, CAPTURE_FIELD)
    return None if "://" in where else where


def _remote_capture(ctx: ApiContext, endpoint: str) -> str | None:
    """The endpoint's DataCaptureConfig.DestinationS3Uri when it is remote S3, else None."""
    resource = ctx.store.find_resource(ENDPOINT, endpoint)
    return resource.spec.get("CaptureS3Uri") if resource is not None else None


_UPLOADED: dict[str, tuple[int, int]] = {}  # local capture file -> (size, mtime) uploaded


def upload_captures(ctx: ApiContext, endpoints: list[str] | None = None) -> int:
    """Copy the captures of endpoints whose destination is remote S3 to
    <DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh.jsonl, each file again when it
    grew; SageMaker also delivers captures to S3 in batches. The monitoring scheduler calls
    this every poll, DeleteEndpoint for its endpoint. The number of files copied."""
    copied = 0
    names = endpoints if endpoints is not None else [
        r.name for r in ctx.store.list_resources(ENDPOINT)]
    for name in names:
        uri = _remote_capture(ctx, name)
        local = ctx.workspace / "capture" / name
        if uri is None or not local.is_dir():
            continue
        fs, base = fsspec.core.url_to_fs(ctx.locations.resolve_output(uri, CAPTURE_FIELD))
        for path in sorted(local.rglob("*.jsonl")):
            stat = path.stat()
            if _UPLOADED.get(str(path)) == (stat.st_size, stat.st_mtime_ns):
                continue
            fs.put_file(str(path), f"{base.rstrip('/')}/{name}/"
                                   f"{path.relative_to(local).as_posix()}")
            _UPLOADED[str(path)] = (stat.st_size, stat.st_mtime_ns)
            copied += 1
    return copied


def delete_endpoint(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["EndpointName"]
    if _endpoint_row(ctx, name) is None:
        raise _missing(ENDPOINT, name)
    try:
        upload_captures(ctx, [name])  # its last captures reach S3 before it goes
    except Exception:
        logging.getLogger(__name__).exception("copying the captures of %s to S3 failed", name)
    ctx.store.delete_endpoint(name)
    if ctx.store.find_resource(ENDPOINT, name) is not None:
        ctx.store.delete_resource(ENDPOINT, name)
    return {}


def list_endpoints(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    rows = [(r, _endpoint_status(ctx, r)[0]) for r in ctx.store.list_endpoints()]
    rows = [(r, s) for r, s in rows
            if p.get("NameContains", "").lower() in r.name.lower()
            and p.get("StatusEquals") in (None, s)
            and in_time_window(p, "CreationTime", r.created)
            and in_time_window(p, "LastModifiedTime", r.modified)]
    chosen, token = page(rows, p, {"Name": lambda x: x[0].name, "CreationTime": lambda x: x[0].created,
                                   "Status": lambda x: x[1]}, "CreationTime")
    return {"Endpoints": [{"EndpointName": r.name, "EndpointArn": arn(ENDPOINT, r.name),
                           "CreationTime": r.created, "LastModifiedTime": r.modified,
                           "EndpointStatus": s} for r, s in chosen], "NextToken": token}


# -- transform jobs ---------------------------------------------------------------------
def create_transform_job(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["TransformJobName"]
    if ctx.store.find_resource(TRANSFORM, name) is not None:
        raise ApiError("ResourceInUse", f"Transform job {name} already exists.")
    _get(ctx, MODEL, p["ModelName"])
    source = p["TransformInput"]["DataSource"]["S3DataSource"]
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise validation_error("tabpilot reads S3DataType S3Prefix (a file or a prefix of files)")
    content = p["TransformInput"].get("ContentType", "text/csv")
    if content.split(";")[0].strip() not in ("text/csv", "application/x-parquet",
                                            "x-application/vnd.amazon+parquet"):
        raise validation_error(f"ContentType {content!r}: transform jobs read text/csv or Parquet")
    accept = p["TransformOutput"].get("Accept", "text/csv")
    if accept not in ("text/csv", "application/jsonlines"):
        raise validation_error(f"Accept {accept!r}: use text/csv or application/jsonlines")
    ctx.locations.table_files(source["S3Uri"], INPUT_FIELD)
    ctx.locations.resolve_output(p["TransformOutput"]["S3OutputPath"], OUTPUT_FIELD)
    ctx.store.add_resource(TRANSFORM, name, {"request": p}, status="InProgress")
    ctx.launch("transform", name)
    return {"TransformJobArn": arn(TRANSFORM, name)}


def describe_transform_job(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = ctx.store.find_resource(TRANSFORM, p["TransformJobName"])
    if row is None:
        raise ApiError("ResourceNotFound", f"Could not find job {p['TransformJobName']}.")
    return {**row.spec["request"], "TransformJobArn": arn(TRANSFORM, row.name),
            "TransformJobStatus": row.status, "FailureReason": row.failure_reason,
            "CreationTime": row.created, "TransformStartTime": row.spec.get("started"),
            "TransformEndTime": row.ended}


OPERATIONS = {
    "CreateModel": create_model, "DescribeModel": describe_model, "DeleteModel": delete_model,
    "CreateEndpointConfig": create_endpoint_config,
    "DescribeEndpointConfig": describe_endpoint_config,
    "DeleteEndpointConfig": delete_endpoint_config,
    "CreateEndpoint": create_endpoint, "DescribeEndpoint": describe_endpoint,
    "UpdateEndpoint": update_endpoint, "DeleteEndpoint": delete_endpoint,
    "ListEndpoints": list_endpoints,
    "CreateTransformJob": create_transform_job, "DescribeTransformJob": describe_transform_job,
}
